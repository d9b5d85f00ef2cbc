"""How a refused message is described to its sender: what was wrong, never the whole of it."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from directdl.contracts.bounds import excerpt
from directdl.redaction import redact_urls_in

# A reply quotes this much of a bad value: enough to recognise it, too little to amplify it.
EXCERPT_CHARS = 80
# One bad list of ten thousand items is ten thousand errors; a few tell the sender enough.
ERRORS_SHOWN = 20


def field_errors(err: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": _where(e) or "(body)", "message": e["msg"], "input": quoted(e.get("input"))}
        for e in err.errors(include_url=False)[:ERRORS_SHOWN]
    ]


def describe(routing_key: str, err: ValidationError) -> str:
    first = err.errors(include_url=False)[0]
    where = _where(first) or "body"
    value = first.get("input")
    shown = json.dumps(quoted(value)) if value is not None else "nothing"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"invalid {routing_key} message: {where}: {first['msg']}, got {shown}{more}"


def quoted(value: Any) -> Any:
    """A bad value as a reply may carry it: whole when short, else its start and its size;
    either way with the credentials of any URL in it hidden."""
    value = jsonable(value)
    text = _text(value)
    shown = redact_urls_in(text)
    if shown != text and not isinstance(value, str):
        try:
            value = json.loads(shown)
        except ValueError:
            value = shown
    elif shown != text:
        value = shown
    if len(shown) <= EXCERPT_CHARS:
        return value
    return excerpt(shown, EXCERPT_CHARS)


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _where(error: Any) -> str:
    # A check of the whole model (a NUL anywhere) names its field in the error's context.
    named = (error.get("ctx") or {}).get("field")
    return str(named) if named else ".".join(str(part) for part in error["loc"])
