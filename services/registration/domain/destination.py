"""Where a template's URL may point: refused before anything connects, naming host and rule."""

from __future__ import annotations

from urllib.parse import urlsplit

from directdl.contracts.errors import ErrorCode, MessageError
from directdl.destinations import DestinationDenied, DestinationPolicy
from directdl.redaction import redact_url


def check_destination(url: str, policy: DestinationPolicy) -> None:
    """Refuse a URL whose host is an address the policy denies. A host name is checked where
    it is resolved: by the URL check here, and by the hosts before each connection."""
    try:
        policy.check_literal(urlsplit(url).hostname or "")
    except DestinationDenied as err:
        raise destination_denied(url, err) from None


def destination_denied(url: str, err: DestinationDenied, via: str | None = None) -> MessageError:
    """The refusal of `url`, reached through `via` (a redirect, a mirror) when given."""
    shown = redact_url(url)
    where = f"URL {shown!r}"
    if via is not None:
        where += f" leads to {redact_url(via)!r}, which"
    return MessageError(
        f"{where} is refused by the download destination policy: {err}",
        code=ErrorCode.DESTINATION_DENIED,
        details={"field": "url", "value": shown, "host": err.host, "rule": err.rule},
    )
