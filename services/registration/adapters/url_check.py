"""The registration-time URL check: does the source answer, and how big is the template?

CloudStack only learns that a URL is wrong when a deploy fails. Here a typo fails at once.
Every connection goes only where the destination policy allows, redirects included, and an
error says no more of what the source answered than its status code: registering URLs must
not become a way to read internal hosts.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import structlog
import urllib3

from directdl.causes import find_cause
from directdl.contracts.errors import ErrorCode, InvalidMessage, MessageError
from directdl.contracts.template import DEFAULT_PORTS, SourceProtocol
from directdl.destinations import DestinationDenied, DestinationPolicy, PinnedAdapter
from directdl.metalink import MAX_BYTES as MAX_METALINK_BYTES
from directdl.metalink import MetalinkError, parse_metalink
from directdl.redaction import redact_url
from directdl.redirects import HopDenied, RedirectRefused, follow
from registration.domain.destination import destination_denied

log = structlog.get_logger(__name__)

# What this service reads itself, over HTTP; True when the body is a document to parse (a
# metalink), not the file. Any other protocol needs a client only the hosts have, so only
# where its server name points is checked.
READ_OVER_HTTP: Mapping[SourceProtocol, bool] = {
    SourceProtocol.HTTP: False,
    SourceProtocol.HTTPS: False,
    SourceProtocol.METALINK: True,
}


@dataclass(frozen=True)
class UrlChecker:
    connect_timeout: float = 5.0
    read_timeout: float = 5.0
    policy: DestinationPolicy = field(default_factory=DestinationPolicy)

    def size_of(self, url: str, protocol: SourceProtocol, headers: dict[str, str]) -> int | None:
        """The size the source announces, None when it does not; raises when it won't answer.

        NFS is not read here (see READ_OVER_HTTP): that needs a client on the hosts, not on
        this service; only where its server name points is checked. A TLS failure does not
        fail the check either, because the hosts may trust certificates uploaded for them
        that this service does not know.
        """
        document = READ_OVER_HTTP.get(protocol)
        if document is None:
            self._check_server(url)
            return None
        with self._session() as session:
            try:
                response = self._follow(session, url, headers, body=document)
            except requests.exceptions.SSLError as err:
                log.info("url_check.tls_unverified", url=redact_url(url), error=str(err))
                return None
            except requests.RequestException as err:
                raise _unreachable(url, self._why(err)) from err
            with response:
                if response.status_code >= 400:
                    raise _unreachable(url, f"the server answered HTTP {response.status_code}")
                if document:
                    return self._metalink_size(url, response)
            length = response.headers.get("Content-Length")
            return int(length) if length and length.isdigit() else None

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        adapter = PinnedAdapter(self.policy)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def _metalink_size(self, url: str, response: requests.Response) -> int | None:
        """The size the metalink gives its file; a document the agents could not use, or a
        mirror the policy refuses, fails now."""
        try:
            data = response.raw.read(MAX_METALINK_BYTES + 1, decode_content=True)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            raise _unreachable(url, self._why(err)) from err
        try:
            metalink = parse_metalink(data, source=redact_url(url))
        except MetalinkError as err:
            details = {"field": "url", "value": redact_url(url)}
            raise InvalidMessage(str(err), details=details) from err
        for mirror in metalink.mirrors:
            # Names are left to the hosts, which check each address before they connect.
            try:
                self.policy.check_literal(urlsplit(mirror).hostname or "")
            except DestinationDenied as err:
                raise destination_denied(url, err, via=mirror) from None
        return metalink.size

    def _follow(
        self, session: requests.Session, url: str, headers: dict[str, str], *, body: bool
    ) -> requests.Response:
        """The answer at the end of the redirects directdl.redirects allows, as the hosts
        follow them; each hop's address is checked before it is connected to. `body`: a GET
        left unread."""
        timeout = (self.connect_timeout, self.read_timeout)

        def send(hop: str, hop_headers: Mapping[str, str]) -> requests.Response:
            return _ask(session, hop, dict(hop_headers), timeout, body=body)

        try:
            response, _ = follow(send, url, headers, self.policy)
        except HopDenied as err:
            via = err.hop if err.redirected else None
            raise destination_denied(url, err.denied, via=via) from None
        except RedirectRefused as err:
            raise _unreachable(url, str(err)) from None
        return response

    def _check_server(self, url: str) -> None:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 0)
        try:
            self.policy.resolve(parts.hostname or "", port)
        except socket.gaierror:
            return  # the hosts may resolve names this service cannot; they check again
        except DestinationDenied as err:
            raise destination_denied(url, err) from None

    def _why(self, err: BaseException) -> str:
        """What went wrong, in words of this side only: the source's own text is left out."""
        if find_cause(err, requests.exceptions.ConnectTimeout):
            return f"connecting timed out after {self.connect_timeout:g} s"
        if find_cause(err, requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError):
            return f"no answer within {self.read_timeout:g} s"
        if find_cause(err, urllib3.exceptions.NameResolutionError, socket.gaierror):
            return "its host name does not resolve"
        refused = find_cause(err, ConnectionRefusedError)
        if refused is not None:
            return "the connection was refused"
        if isinstance(err, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
            return "the URL cannot be requested"
        return f"the connection failed ({type(err).__name__})"


def _ask(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    timeout: tuple[float, float],
    *,
    body: bool,
) -> requests.Response:
    if not body:
        response = session.head(url, headers=headers, timeout=timeout, allow_redirects=False)
        if response.status_code not in (405, 501):
            return response
        response.close()  # no HEAD here: ask for the body, read none
    return session.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=False)


def _unreachable(url: str, why: str) -> MessageError:
    shown = redact_url(url)
    return MessageError(
        f"URL {shown!r} cannot be downloaded: {why}; to register it anyway, set validate_url "
        "false (CLI: --no-validate-url)",
        code=ErrorCode.URL_UNREACHABLE,
        details={"field": "url", "value": shown},
    )
