"""HTTP redirects followed by hand: every hop's destination checked, credentials kept home."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urljoin, urlsplit

import requests

from directdl.contracts.template import DEFAULT_PORTS
from directdl.destinations import DestinationDenied, DestinationPolicy
from directdl.redaction import is_credential_header, redact_url

MAX_REDIRECTS = 10
STATUSES = frozenset({301, 302, 303, 307, 308})
SCHEMES = ("http", "https")

# One request to one hop, never following redirects itself (allow_redirects=False). Its own
# errors pass through `follow` unchanged, so the caller can translate them knowing the hop.
Send = Callable[[str, Mapping[str, str]], requests.Response]


class RedirectRefused(Exception):
    """A redirect not followed: to a scheme other than http(s), from https down to http, or
    one too many. The message names the hops, redacted."""


class HopDenied(Exception):
    """The destination policy refuses `hop`: `first` itself, or where its redirects led."""

    def __init__(self, first: str, hop: str, denied: DestinationDenied) -> None:
        super().__init__(str(denied))
        self.first, self.hop, self.denied = first, hop, denied

    @property
    def redirected(self) -> bool:
        return self.hop != self.first


def follow(
    send: Send,
    url: str,
    headers: Mapping[str, str],
    policy: DestinationPolicy,
    *,
    limit: int = MAX_REDIRECTS,
) -> tuple[requests.Response, str]:
    """The response at the end of at most `limit` redirects, and the URL that gave it.

    Each hop's host is checked by `policy` before `send` goes there: an address here, a name
    where `send`'s pinned connection resolves it (its DestinationDenied comes out as HopDenied
    too). Credential headers are not sent on to another origin: they are for the template's
    own server.
    """
    hop, sent = url, dict(headers)
    for _ in range(limit + 1):
        try:
            policy.check_literal(urlsplit(hop).hostname or "")
            response = send(hop, sent)
        except DestinationDenied as err:
            raise HopDenied(url, hop, err) from None
        location = response.headers.get("Location")
        if response.status_code not in STATUSES or not location:
            return response, hop
        response.close()
        target = urljoin(hop, location)
        _check_scheme(hop, target)
        if origin(target) != origin(hop):
            sent = {k: v for k, v in sent.items() if not is_credential_header(k)}
        hop = target
    raise RedirectRefused(f"more than {limit} redirects starting at {redact_url(url)}")


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port (the scheme's default when the URL names none)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)


def _check_scheme(hop: str, target: str) -> None:
    scheme, current = urlsplit(target).scheme.lower(), urlsplit(hop).scheme.lower()
    if scheme not in SCHEMES:
        why = "which is neither http nor https"
    elif (current, scheme) == ("https", "http"):
        why = "down from https to http"
    else:
        return
    raise RedirectRefused(f"{redact_url(hop)} redirects to {redact_url(target)}, {why}")
