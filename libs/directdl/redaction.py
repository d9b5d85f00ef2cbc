"""What may be shown of a source: no credentials, which only the chosen host ever sees."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

HIDDEN = "***"
# Header names that carry credentials, by the words they contain.
CREDENTIAL_WORDS = ("authorization", "cookie", "token", "secret", "password", "api-key", "apikey")
# A URL inside free text (an error, a rejected value): scheme, then anything but a delimiter.
# The scheme's length is bounded because an unbounded one makes a long run of letters with no
# "://" cost time quadratic in its length (seconds for the 90 kB value of a refused message).
# A longer scheme still has its last 64 characters matched, so the URL is redacted all the same.
_EMBEDDED_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,63}://[^\s\"'<>]+")


def redact_url(url: str) -> str:
    """``url`` with its user-info and its query shown as ``***``: a query is often the
    credential itself (the signature of a pre-signed URL). Anything unparseable is hidden."""
    try:
        parts = urlsplit(url)
        _, at, where = parts.netloc.rpartition("@")
        netloc = f"{HIDDEN}@{where}" if at else parts.netloc
        shown = parts._replace(netloc=netloc, query=HIDDEN if parts.query else "", fragment="")
        return shown.geturl()
    except ValueError:
        return HIDDEN


def redact_urls_in(text: str) -> str:
    """``text`` with every URL in it redacted."""
    return _EMBEDDED_URL.sub(lambda match: redact_url(match.group(0)), text)


def is_credential_header(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in CREDENTIAL_WORDS)
