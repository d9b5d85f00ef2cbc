"""CloudStack's parameter map of an HTTP request, as ApiServlet builds and checks it."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from urllib.parse import unquote_to_bytes

_FORM = "application/x-www-form-urlencoded"
_SHOWN = 64
# checkCharacterInkParams' CONTROL_CHARACTERS, [\000-\011\013-\014\016-\037\177]: every ASCII
# control character but LF and CR, which a PEM certificate needs.
_NON_PRINTABLE = re.compile("[\x00-\x09\x0b-\x0c\x0e-\x1f\x7f]")
# URLDecoder throws on a "%" not followed by two hex digits; unquote would keep it as it is.
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class BadParameter(ValueError):
    """A parameter CloudStack refuses before looking at the command (its 431)."""


def shown_name(name: str) -> str:
    """A parameter name fit for an error text (and its X-Description header): control
    characters as "?", cut at 64 characters. A value is never shown."""
    cut = "".join(c if c.isprintable() else "?" for c in name[:_SHOWN])
    return cut + "..." if len(name) > _SHOWN else cut


def _decode(raw: bytes, name: str | None) -> str:
    what = "a parameter name" if name is None else f"parameter {shown_name(name)}"
    if _BAD_ESCAPE.search(raw):
        raise BadParameter(f"Malformed percent-encoding in {what}")
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadParameter(f"Invalid UTF-8 in {what}") from None


def _pairs(encoded: bytes) -> Iterator[tuple[str, str, bool]]:
    # Jetty's UrlEncoded: "&" separates, the first "=" splits, an empty piece is skipped, an
    # empty name is kept. The bool tells whether there was an "=".
    for piece in encoded.split(b"&"):
        if not piece:
            continue
        raw_name, equals, raw_value = piece.partition(b"=")
        name = _decode(raw_name, None)
        yield name, _decode(raw_value, name), bool(equals)


def _is_form(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == _FORM


def request_params(query_string: str, body: bytes, content_type: str | None) -> dict[str, str]:
    """The one value per name that CloudStack's verifyRequest and commands see.

    `query_string` is the raw query as the server read it, bytes as latin-1 characters (PEP 3333,
    http.server); `body` counts only as an application/x-www-form-urlencoded form (pass b"" for
    a GET). Both are UTF-8; "+" is a space; a bare `name` is there with the value "".
    """
    try:
        query = list(_pairs(query_string.encode("latin-1")))
    except UnicodeEncodeError:
        raise BadParameter("The query string holds characters no byte stands for") from None
    form = list(_pairs(body)) if _is_form(content_type) else []
    params: dict[str, str] = {}
    # getParameterMap lists a name's query values, then its form values; CloudStack reads the
    # first of them (value[0]).
    for name, value, _ in (*query, *form):
        params.setdefault(name, value)
    # utf8Fixup then re-reads the query's name=value pairs in order, each overwriting: the
    # last one wins. A bare name has no "=" and is skipped, so it keeps what it had.
    for name, value, equals in query:
        if equals:
            params[name] = value
    return params


def check_printable(params: Mapping[str, str]) -> None:
    """Raise BadParameter, with CloudStack's text, if a value holds an ASCII control character
    other than LF or CR (checkCharacterInkParams)."""
    for name, value in params.items():
        if _NON_PRINTABLE.search(value):
            raise BadParameter(
                "Received value containing illegal ASCII non-printable characters for parameter "
                + shown_name(name)
            )
