"""HTTP(S) downloads with requests: streamed, resumed, every redirect and address checked."""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests
import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.util.ssl_match_hostname import CertificateError as HostnameError

from directdl.causes import find_cause
from directdl.contracts.download import DownloadFailure
from directdl.destinations import DestinationPolicy, PinnedAdapter
from directdl.redaction import redact_url
from directdl.redirects import HopDenied, RedirectRefused, follow, origin
from host_agent.download.core import (
    DownloadError,
    DownloadRequest,
    Sink,
    TerminalError,
    Timeouts,
    TransientError,
)

CHUNK_SIZE = 1024 * 1024
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})  # 4xx answers meaning "later", not "never"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+|\*)(?:-\d+)?/(\d+|\*)", re.IGNORECASE)


class HttpFetcher:
    """The `Fetcher` for http and https URLs.

    Use one instance per download: it remembers the validator (the strong ETag of the first
    response, else its Last-Modified) and the total size across calls, so the next call
    resumes with `Range` + `If-Range` and never splices two versions of a file together.
    `validator` may be handed in (and read back) when a partial file outlives the process; a
    fresh instance without one restarts a non-empty sink rather than trust its bytes, unless
    `resume_unvalidated` (metalink mirrors of one file, checked by the whole-file hash after):
    then it sends a bare `Range`. `on_validator` hears each new validator before the first
    byte of the response it came with reaches the sink, so that a validator stored by it
    always describes the bytes a partial file holds.

    Timeouts: `connect` and `read` go to requests as `timeout=(connect, read)`; `read` bounds
    each wait for data, so a body that stalls fails after it. `connection_request` is the wait
    for a pooled connection (in urllib3, pool acquisition): every call opens its own session
    with one non-blocking single-connection pool, so nothing ever waits and it bounds nothing.
    """

    def __init__(
        self,
        *,
        validator: str | None = None,
        resume_unvalidated: bool = False,
        on_validator: Callable[[str | None], None] | None = None,
    ) -> None:
        self.validator = validator
        self.total: int | None = None
        self._seen_response = validator is not None or resume_unvalidated
        self.on_validator = on_validator

    def fetch(self, request: DownloadRequest, sink: Sink, cancelled: Callable[[], bool]) -> None:
        headers = {**request.headers, "Accept-Encoding": "identity"}
        if sink.offset > 0 and not self._seen_response:
            sink.restart()  # nothing proves those bytes came from this file
        offset = sink.offset
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
            if self.validator:
                headers["If-Range"] = self.validator
        with _session(request.extra_ca_file, request.policy) as session:
            response, url = _open(session, request, headers)
            with response:
                if self._begin(response, redact_url(url), sink, offset):
                    _copy(response.iter_content(CHUNK_SIZE), url, request.timeouts, sink, cancelled)
        if self.total is not None and sink.offset != self.total:
            message = f"{redact_url(url)}: got {sink.offset} of {self.total} bytes"
            raise TransientError(DownloadFailure.CONNECTION, message)

    def _begin(self, response: requests.Response, where: str, sink: Sink, offset: int) -> bool:
        """Check the status and the range; tell the sink the size. False: nothing to copy."""
        status, headers = response.status_code, response.headers
        start, total = _content_range(headers.get("Content-Range", ""))
        if status == 416 and offset > 0 and (total or self.total) == offset:
            self.total = offset  # we asked for the bytes after the last one: done
            sink.expect_size(offset)
            return False
        if status == 416 and offset > 0:
            sink.restart()
            message = f"{where} has no bytes={offset}- (size now {total}); starting again"
            raise TransientError(DownloadFailure.CONNECTION, message)
        _check_status(response, where)
        if status == 206:
            etag = headers.get("ETag")
            if start != offset or (_is_etag(self.validator) and etag not in (None, self.validator)):
                sink.restart()
                message = f"{where} answered bytes={offset}- from {start} (ETag {etag} is not "
                raise TransientError(DownloadFailure.CONNECTION, f"{message}{self.validator})")
            if self.validator is None:
                self._learn(_validator(headers))
        else:
            if offset > 0:  # the server ignored the range, or If-Range saw a new version
                sink.restart()
            self._learn(_validator(headers))
            length = headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
        self.total, self._seen_response = total, True
        if total is not None:
            sink.expect_size(total)
        return True

    def _learn(self, validator: str | None) -> None:
        """Adopt the validator of the bytes about to be written; a new one is told first."""
        if validator != self.validator and self.on_validator is not None:
            self.on_validator(validator)
        self.validator = validator


class _TrustAdapter(PinnedAdapter):
    """Verifies against one SSLContext (system CAs plus the extra file) and nothing else.

    The context is made at the first https connection: loading the system's CAs takes tens
    of milliseconds (3% of a 1 GiB download on loopback) that a plain http download skips.
    """

    def __init__(self, policy: DestinationPolicy, extra_ca_file: str | None) -> None:
        self._extra_ca_file = extra_ca_file
        self._context: ssl.SSLContext | None = None
        super().__init__(policy, pool_connections=1, pool_maxsize=1)

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        if self._context is None:
            self._context = _ssl_context(self._extra_ca_file)
            self.poolmanager.connection_pool_kw["ssl_context"] = self._context
        return super().get_connection_with_tls_context(*args, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests would load certifi's bundle into our context on top (or, with verify=False,
        # switch checking off); here the context alone decides, and it always verifies.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = conn.ca_cert_dir = None


def _session(extra_ca_file: str | None, policy: DestinationPolicy) -> requests.Session:
    """Connections go only to addresses `policy` checked, redirects included."""
    session = requests.Session()
    session.trust_env = False  # no proxies, .netrc or REQUESTS_CA_BUNDLE from the environment
    session.mount("http://", PinnedAdapter(policy, pool_connections=1, pool_maxsize=1))
    session.mount("https://", _TrustAdapter(policy, extra_ca_file))
    return session


def _ssl_context(extra_ca_file: str | None) -> ssl.SSLContext:
    """The system's CAs plus `extra_ca_file`; host names are always checked."""
    context = ssl.create_default_context()
    paths = ssl.get_default_verify_paths()
    if not (paths.cafile or paths.capath):  # no system store at all: use requests' bundle
        context.load_verify_locations(cafile=DEFAULT_CA_BUNDLE_PATH)
    if extra_ca_file:
        try:
            context.load_verify_locations(cafile=extra_ca_file)
        except (OSError, ssl.SSLError) as err:
            message = f"cannot load the extra CA file {extra_ca_file}: {err}"
            raise TerminalError(DownloadFailure.TLS, message) from err
    return context


def _open(
    session: requests.Session, request: DownloadRequest, headers: dict[str, str]
) -> tuple[requests.Response, str]:
    """GET the URL, following the redirects directdl.redirects allows."""
    timeouts = request.timeouts

    def send(url: str, hop_headers: Mapping[str, str]) -> requests.Response:
        try:
            return session.get(
                url,
                headers=dict(hop_headers),
                stream=True,
                allow_redirects=False,
                timeout=(timeouts.connect, timeouts.read),
            )
        except requests.RequestException as err:
            raise _translate(err, url, timeouts, in_body=False) from err

    try:
        return follow(send, request.url, headers, request.policy)
    except HopDenied as err:
        raise _denied(err) from None
    except RedirectRefused as err:
        raise TerminalError(DownloadFailure.UNSAFE_REDIRECT, str(err)) from None


def _denied(err: HopDenied) -> TerminalError:
    """Refused before connecting; another host would be refused the same."""
    where = redact_url(err.first)
    if err.redirected:
        where += f" redirects to {redact_url(err.hop)}, which"
    message = f"{where} is refused by the download destination policy: {err.denied}"
    return TerminalError(DownloadFailure.DESTINATION_DENIED, message)


def _check_status(response: requests.Response, where: str) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    what = f"HTTP {status} {response.reason or ''}".rstrip() + f" for {where}"
    if status in (404, 410):
        raise TerminalError(DownloadFailure.NOT_FOUND, what)
    if status in RETRYABLE_CLIENT_STATUSES:
        raise TransientError(DownloadFailure.HTTP_CLIENT, what)
    if 400 <= status < 500:
        raise TerminalError(DownloadFailure.HTTP_CLIENT, what)
    raise TransientError(DownloadFailure.HTTP_SERVER, what)  # 5xx, or a status we cannot use


def _copy(
    chunks: Iterator[bytes], url: str, timeouts: Timeouts, sink: Sink, cancelled: Callable[[], bool]
) -> None:
    while True:
        if cancelled():
            message = f"download of {redact_url(url)} cancelled at byte {sink.offset}"
            raise TerminalError(DownloadFailure.CANCELLED, message)
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            raise _translate(err, url, timeouts, in_body=True) from err
        sink.write(chunk)  # outside the try: a sink's own errors (NO_SPACE) pass unchanged


def _translate(err: BaseException, url: str, timeouts: Timeouts, *, in_body: bool) -> DownloadError:
    _, host, port = origin(url)
    where = f"{host}:{port}"
    timed_out = find_cause(
        err, requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError
    )
    # urllib3's NewConnectionError (refused, unreachable) subclasses ConnectTimeoutError.
    if timed_out and not isinstance(timed_out, urllib3.exceptions.NewConnectionError):
        message = f"connecting to {where} timed out after {timeouts.connect:g} s"
        return TransientError(DownloadFailure.CONNECT_TIMEOUT, message)
    # A stall mid-body comes out of iter_content as ConnectionError(ReadTimeoutError).
    if find_cause(err, requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError):
        message = f"no data from {where} for {timeouts.read:g} s ({redact_url(url)})"
        return TransientError(DownloadFailure.READ_TIMEOUT, message)
    bad_cert = find_cause(err, ssl.SSLCertVerificationError, HostnameError)
    if bad_cert is not None:
        reason = getattr(bad_cert, "verify_message", None) or bad_cert
        return TerminalError(DownloadFailure.TLS, f"{where}: certificate verify failed: {reason}")
    tls = find_cause(err, ssl.SSLError)
    # A failed handshake is terminal; once the body flows, a TLS error is a broken connection.
    if tls is not None and not in_body and not isinstance(tls, ssl.SSLEOFError):
        return TerminalError(DownloadFailure.TLS, f"TLS with {where} failed: {tls}")
    if isinstance(err, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
        return TerminalError(
            DownloadFailure.HTTP_CLIENT, f"cannot request {redact_url(url)}: {err}"
        )
    retry = find_cause(err, urllib3.exceptions.MaxRetryError)
    reason = retry.reason if isinstance(retry, urllib3.exceptions.MaxRetryError) else err
    return TransientError(DownloadFailure.CONNECTION, f"connection to {where} failed: {reason}")


def _validator(headers: Mapping[str, str]) -> str | None:
    etag = headers.get("ETag")
    return etag if _is_etag(etag) else headers.get("Last-Modified")


def _is_etag(value: str | None) -> bool:
    """A strong ETag: If-Range may carry it (a weak one, W/"...", it may not)."""
    return bool(value and value.startswith('"'))


def _content_range(value: str) -> tuple[int | None, int | None]:
    """(first byte, total) from `bytes 100-199/200` or `bytes */200`; None where unknown."""
    match = _CONTENT_RANGE.match(value)
    if not match:
        return None, None
    start, total = match.groups()
    return (None if start == "*" else int(start)), (None if total == "*" else int(total))
