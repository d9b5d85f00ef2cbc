"""The registration-time URL check: does the source answer, and how big is the template?

CloudStack only learns that a URL is wrong when a deploy fails. Here a typo fails at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import structlog

from directdl.contracts.errors import ErrorCode, InvalidMessage, MessageError
from directdl.contracts.template import Protocol
from directdl.metalink import MAX_BYTES as MAX_METALINK_BYTES
from directdl.metalink import MetalinkError, parse_metalink

log = structlog.get_logger(__name__)

MAX_REDIRECTS = 10


@dataclass(frozen=True)
class UrlChecker:
    connect_timeout: float = 5.0
    read_timeout: float = 5.0

    def size_of(self, url: str, protocol: Protocol, headers: dict[str, str]) -> int | None:
        """The size the source announces, None when it does not; raises when it won't answer.

        NFS is not checked here: reading it needs a client on the hosts, not on this service.
        A TLS failure does not fail the check either, because the hosts may trust certificates
        uploaded for them that this service does not know.
        """
        if protocol is Protocol.NFS:
            return None
        try:
            response = self._head_or_get(url, headers)
        except requests.exceptions.SSLError as err:
            log.info("url_check.tls_unverified", url=url, error=str(err))
            return None
        except requests.RequestException as err:
            raise _unreachable(url, f"{type(err).__name__}: {err}") from err
        if response.status_code >= 400:
            raise _unreachable(url, f"the server answered {response.status_code} {response.reason}")
        if protocol is Protocol.METALINK:
            return self._metalink_size(url, headers)
        length = response.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else None

    def _metalink_size(self, url: str, headers: dict[str, str]) -> int | None:
        """The size the metalink gives its file; a document the agents could not use fails now."""
        timeout = (self.connect_timeout, self.read_timeout)
        try:
            with requests.get(url, headers=headers, timeout=timeout, stream=True) as response:
                response.raise_for_status()
                data = response.raw.read(MAX_METALINK_BYTES + 1, decode_content=True)
        except requests.RequestException as err:
            raise _unreachable(url, f"{type(err).__name__}: {err}") from err
        try:
            return parse_metalink(data, source=url).size
        except MetalinkError as err:
            raise InvalidMessage(str(err), details={"field": "url", "value": url}) from err

    def _head_or_get(self, url: str, headers: dict[str, str]) -> requests.Response:
        timeout = (self.connect_timeout, self.read_timeout)
        with requests.Session() as session:
            session.trust_env = False
            for _ in range(MAX_REDIRECTS + 1):
                response = session.head(
                    url, headers=headers, timeout=timeout, allow_redirects=False
                )
                if response.status_code in (405, 501):  # no HEAD here: ask for the body, read none
                    response = session.get(
                        url, headers=headers, timeout=timeout, stream=True, allow_redirects=False
                    )
                    response.close()
                if not response.is_redirect:
                    return response
                target = urljoin(url, response.headers["Location"])
                if urlsplit(target).scheme not in ("http", "https"):
                    raise _unreachable(url, f"it redirects to {target!r}, which is not http(s)")
                url = target
        raise _unreachable(url, f"more than {MAX_REDIRECTS} redirects")


def _unreachable(url: str, why: str) -> MessageError:
    return MessageError(
        f"URL {url!r} cannot be downloaded: {why} (set validate_url false to register it anyway)",
        code=ErrorCode.URL_UNREACHABLE,
        details={"field": "url", "value": url},
    )
