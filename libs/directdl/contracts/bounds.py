"""Bounded field types for the contract: every string, number, list and map has a limit."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

# CloudStack keeps a template's request headers among its details under this prefix.
HEADER_PREFIX = "HTTP_HEADER:"

ID_MAX = 255
URL_MAX = 2048
TEXT_MAX = 4096
# A real chain (leaf, intermediates, root, with their comments) stays well below this.
PEM_MAX = 128 * 1024
# Enough for every host, pool or zone of a large cloud in one answer, and no more.
MANY = 100_000
ZONES_MAX = 100
HEADERS_MAX = 32
HEADER_VALUE_MAX = 4096
# All of a template's details together: they ride along in every reply, event and list page.
DETAILS_TOTAL_MAX = 16 * 1024
PAGE_MAX = 1_000_000
BYTES_MAX = 2**63 - 1  # a signed 64-bit column holds every size
SECONDS_MAX = 10 * 366 * 24 * 3600.0  # ten years: no duration the system measures is longer

Id = Annotated[str, Field(min_length=1, max_length=ID_MAX)]
Name = Annotated[str, Field(min_length=1, max_length=ID_MAX)]
# A short word or label that may be empty: a keyword, a state, a unit.
Short = Annotated[str, Field(max_length=ID_MAX)]
Token = Annotated[str, Field(min_length=1, max_length=64)]
Url = Annotated[str, Field(min_length=1, max_length=URL_MAX)]
Text = Annotated[str, Field(max_length=TEXT_MAX)]
Path = Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]
Digest = Annotated[str, Field(min_length=1, max_length=160)]
Pem = Annotated[str, Field(min_length=1, max_length=PEM_MAX)]
# A certificate's subject or issuer: no longer than the certificate it comes from.
Dn = Annotated[str, Field(max_length=PEM_MAX)]

Bytes = Annotated[int, Field(ge=0, le=BYTES_MAX)]
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
Page = Annotated[int, Field(ge=1, le=PAGE_MAX)]
Seconds = Annotated[float, Field(ge=0, le=SECONDS_MAX, allow_inf_nan=False)]
Rate = Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False)]
# A setting's value: every setting's range fits inside (a pool's cap in bytes is the largest),
# and floats stay exact enough.
Number = (
    Annotated[int, Field(ge=-BYTES_MAX, le=BYTES_MAX)]
    | Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False)]
)
# A heartbeat's period: datetime arithmetic with it must stay in range.
Interval = Annotated[float, Field(ge=0.1, le=3600, allow_inf_nan=False)]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 7230 field-content: visible ASCII, space, tab, and obs-text (latin-1's upper half).
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def header_problem(name: str, value: str) -> str | None:
    """Why HTTP cannot carry this header, or None when it can."""
    if not _TOKEN.fullmatch(name):
        return f"header name {excerpt(name)} is not an HTTP token (RFC 7230)"
    if not _FIELD_VALUE.fullmatch(value):
        return (
            f"header {name} has a value HTTP cannot carry (CR, LF, a control character "
            "or a character outside latin-1)"
        )
    return None


def _check_total(entries: Mapping[str, str]) -> None:
    total = sum(len(k) + len(v) for k, v in entries.items())
    if total > DETAILS_TOTAL_MAX:
        raise ValueError(f"{total} characters in all; at most {DETAILS_TOTAL_MAX} are allowed")


def _headers(value: dict[str, str]) -> dict[str, str]:
    _check_total(value)
    for name, text in value.items():
        problem = header_problem(name, text)
        if problem:
            raise ValueError(problem)
    return value


def _details(value: dict[str, str]) -> dict[str, str]:
    _check_total(value)
    for key, text in value.items():
        if key.startswith(HEADER_PREFIX):
            problem = header_problem(key.removeprefix(HEADER_PREFIX), text)
            if problem:
                raise ValueError(f"{key}: {problem}")
    return value


HeaderValue = Annotated[str, Field(max_length=HEADER_VALUE_MAX)]
Headers = Annotated[
    dict[Short, HeaderValue], Field(max_length=HEADERS_MAX), AfterValidator(_headers)
]
# Free-form details; those named HTTP_HEADER:<Name> must be headers HTTP can send.
Details = Annotated[
    dict[Short, HeaderValue], Field(max_length=HEADERS_MAX), AfterValidator(_details)
]


def excerpt(value: str, limit: int = 80) -> str:
    """At most `limit` characters of a value, saying how long the whole was."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}…({len(value.encode('utf-8', 'replace'))} bytes)"


def clip(text: str, limit: int = TEXT_MAX) -> str:
    """Free text cut to fit a bounded field, marked so a reader knows it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def nul_at(value: Any, where: str = "") -> str | None:
    """The dotted path of the first string (or map key) holding a NUL character, if any."""
    if isinstance(value, str):
        return (where or "(body)") if "\x00" in value else None
    if isinstance(value, BaseModel):
        items: Any = ((name, getattr(value, name)) for name in type(value).model_fields)
    elif isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        path = f"{where}.{key}" if where else str(key)
        if isinstance(key, str) and "\x00" in key:
            return path
        found = nul_at(item, path)
        if found is not None:
            return found
    return None
