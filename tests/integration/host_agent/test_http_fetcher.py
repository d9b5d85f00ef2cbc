"""HttpFetcher against a real nginx, and against a raw-socket server that fails on cue."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from directdl.contracts.download import DownloadFailure
from directdl_testing.certs import make_self_signed
from directdl_testing.faulty_http import FaultyServer
from directdl_testing.nginx import AccessLogEntry, Nginx
from directdl_testing.sinks import MemorySink
from directdl_testing.waiting import wait_until
from host_agent.download.core import (
    DownloadError,
    DownloadRequest,
    TerminalError,
    Timeouts,
    TransientError,
)
from host_agent.download.http import HttpFetcher
from host_agent.download.retry import fetch_with_retries

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
BIG = os.urandom(20 * MiB)
SMALL = os.urandom(100 * 1024)
HOPS = 11  # /hop/0 -> /hop/1 -> ... -> /hop/10 -> /small.bin: 11 redirects from /hop/0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def req(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    timeouts: Timeouts | None = None,
    extra_ca_file: str | None = None,
) -> DownloadRequest:
    return DownloadRequest(
        url=url,
        headers=headers or {},
        timeouts=timeouts or Timeouts(),
        extra_ca_file=extra_ca_file,
    )


def fetch(request: DownloadRequest, sink: MemorySink, fetcher: HttpFetcher | None = None) -> None:
    (fetcher or HttpFetcher()).fetch(request, sink, lambda: False)


def failure(request: DownloadRequest, sink: MemorySink | None = None) -> DownloadError:
    with pytest.raises(DownloadError) as caught:
        fetch(request, sink or MemorySink())
    return caught.value


def logged(nginx: Nginx, marker: str, count: int = 1) -> list[AccessLogEntry]:
    """The GETs whose URI carries `marker`, once there are `count` of them."""

    def entries() -> list[AccessLogEntry]:
        return [e for e in nginx.access_log_lines() if marker in e.uri and e.method == "GET"]

    wait_until(lambda: len(entries()) >= count, timeout=5, what=f"{count} log lines {marker}")
    return entries()


@pytest.fixture(scope="module")
def file_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return (tmp_path_factory.mktemp("local") / "secret").as_uri()


@pytest.fixture(scope="module")
def nginx(file_url: str) -> Iterator[Nginx]:
    redirects = {
        "/redirect/same": "{http_url}/small.bin?t=same-target",
        "/redirect/file": file_url,
        "/redirect/downgrade": "{http_url}/small.bin",
        **{f"/hop/{i}": f"{{http_url}}/hop/{i + 1}" for i in range(HOPS - 1)},
        f"/hop/{HOPS - 1}": "{http_url}/small.bin?t=hops",
    }
    with Nginx(redirects=redirects, slow_rate="4m") as server:
        server.add_file("big.bin", BIG)
        server.add_file("small.bin", SMALL)
        (server.root / "dir").mkdir(mode=0o755)
        yield server


# --- plain downloads, TLS -------------------------------------------------------------------


def test_plain_http_download_matches_sha256(nginx: Nginx) -> None:
    sink = MemorySink()
    fetch(req(f"{nginx.http_url}/big.bin?t=plain"), sink)
    assert sink.hexdigest() == sha256(BIG)
    assert sink.expected_sizes == [len(BIG)]
    [entry] = logged(nginx, "t=plain")
    assert (entry.status, entry.range, entry.body_bytes_sent) == (200, "", len(BIG))


def test_https_trusted_through_extra_ca_file(nginx: Nginx) -> None:
    sink = MemorySink()
    fetch(req(f"{nginx.https_url}/big.bin", extra_ca_file=str(nginx.cert_pem_path)), sink)
    assert sink.hexdigest() == sha256(BIG)


def test_the_extra_ca_adds_to_the_system_store(
    nginx: Nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(make_self_signed("other CA", ["DNS:other.example"])[0])
    monkeypatch.setenv("SSL_CERT_FILE", str(nginx.cert_pem_path))  # stands in for the system's
    sink = MemorySink()
    fetch(req(f"{nginx.https_url}/small.bin", extra_ca_file=str(other)), sink)
    assert sink.hexdigest() == sha256(SMALL)


def test_https_without_the_extra_ca_is_terminal_tls(nginx: Nginx) -> None:
    error = failure(req(f"{nginx.https_url}/small.bin"))
    assert isinstance(error, TerminalError)
    assert error.code == DownloadFailure.TLS
    assert "certificate verify failed: self-signed certificate" in error.message


def test_trusted_certificate_for_another_host_name_is_tls(tmp_path: Path) -> None:
    cert, key = make_self_signed("wrong.example", ["DNS:wrong.example"])
    with Nginx(cert_pem=cert, key_pem=key) as server:
        server.add_file("small.bin", SMALL)
        request = req(f"{server.https_url}/small.bin", extra_ca_file=str(server.cert_pem_path))
        error = failure(request)
    assert (error.code, error.terminal) == (DownloadFailure.TLS, True)
    assert "mismatch" in error.message.lower() or "match" in error.message, error.message


def test_unreadable_extra_ca_file_is_tls(nginx: Nginx, tmp_path: Path) -> None:
    error = failure(req(f"{nginx.https_url}/small.bin", extra_ca_file=str(tmp_path / "none")))
    assert (error.code, error.terminal) == (DownloadFailure.TLS, True)


# --- headers and status codes ---------------------------------------------------------------


def test_custom_headers_reach_the_server(nginx: Nginx) -> None:
    headers = {"X-Test": "hello", "Authorization": "Bearer abc"}
    fetch(req(f"{nginx.http_url}/small.bin?t=headers", headers=headers), MemorySink())
    [entry] = logged(nginx, "t=headers")
    assert (entry.x_test, entry.authorization) == ("hello", "Bearer abc")


def test_404_is_terminal_not_found_naming_the_url(nginx: Nginx) -> None:
    url = f"{nginx.http_url}/missing.bin"
    error = failure(req(url))
    assert (error.code, error.terminal) == (DownloadFailure.NOT_FOUND, True)
    assert url in error.message and "404" in error.message


def test_403_is_terminal_http_client(nginx: Nginx) -> None:
    url = f"{nginx.http_url}/dir/"  # a directory without an index: nginx forbids it
    error = failure(req(url))
    assert (error.code, error.terminal) == (DownloadFailure.HTTP_CLIENT, True)
    assert "403" in error.message and url in error.message


def test_503_twice_then_ok_succeeds_through_retries() -> None:
    delays: list[float] = []
    with FaultyServer(SMALL) as server:
        server.status(503, times=2)
        sink = MemorySink()
        fetch_with_retries(HttpFetcher(), req(server.url), sink, sleep=delays.append)
    assert sink.hexdigest() == sha256(SMALL)
    assert len(server.requests) == 3 and len(delays) == 2


# --- resuming -------------------------------------------------------------------------------


def test_drop_after_5_mib_resumes_with_range_and_if_range() -> None:
    content = os.urandom(8 * MiB)
    with FaultyServer(content, etag='"v1"') as server:
        server.drop_after(5 * MiB)
        sink = MemorySink()
        fetch_with_retries(HttpFetcher(), req(server.url), sink, sleep=lambda _: None)
    assert sink.hexdigest() == sha256(content) and sink.offset == len(content)
    assert sink.restarts == 0
    assert [(r.method, r.range, r.if_range) for r in server.requests] == [
        ("GET", None, None),
        ("GET", "bytes=5242880-", '"v1"'),
    ]


def test_a_short_body_is_a_transient_connection_error() -> None:
    with FaultyServer(os.urandom(3 * MiB)) as server:
        server.drop_after(2 * MiB)
        error = failure(req(server.url))
    assert (error.code, error.terminal) == (DownloadFailure.CONNECTION, False)


class Learnt:
    """An `on_validator` that notes each validator with the sink's state when it was told."""

    def __init__(self, sink: MemorySink) -> None:
        self.sink = sink
        self.calls: list[tuple[str | None, int, int]] = []

    def __call__(self, validator: str | None) -> None:
        self.calls.append((validator, self.sink.offset, self.sink.restarts))


def test_the_validator_is_told_before_the_first_byte(nginx: Nginx) -> None:
    url = f"{nginx.http_url}/big.bin?t=told"
    sink = MemorySink()
    learnt = Learnt(sink)
    fetcher = HttpFetcher(on_validator=learnt)
    fetch(req(url), sink, fetcher)
    assert learnt.calls == [(etag_of(url), 0, 0)]
    assert fetcher.validator == etag_of(url) and sink.hexdigest() == sha256(BIG)


def test_nginx_answers_range_with_if_range_by_206(nginx: Nginx) -> None:
    url = f"{nginx.http_url}/big.bin?t=prefilled"
    etag = etag_of(url)
    sink = MemorySink(BIG[: 7 * MiB])
    learnt = Learnt(sink)
    fetch(req(url), sink, HttpFetcher(validator=etag, on_validator=learnt))
    assert sink.hexdigest() == sha256(BIG) and sink.restarts == 0
    assert learnt.calls == []  # the stored validator still holds
    [entry] = logged(nginx, "t=prefilled")
    assert (entry.status, entry.range, entry.if_range) == (206, f"bytes={7 * MiB}-", etag)
    assert entry.body_bytes_sent == len(BIG) - 7 * MiB


def test_nginx_resume_after_cancel_on_the_same_fetcher(nginx: Nginx) -> None:
    url, fetcher, sink = f"{nginx.http_url}/big.bin?t=again", HttpFetcher(), MemorySink()
    with pytest.raises(TerminalError):
        fetcher.fetch(req(url), sink, lambda: sink.offset >= MiB)
    fetch(req(url), sink, fetcher)
    assert sink.hexdigest() == sha256(BIG) and sink.restarts == 0
    _, second = logged(nginx, "t=again", 2)
    assert (second.status, second.range, second.if_range) == (206, f"bytes={MiB}-", etag_of(url))


def etag_of(url: str) -> str:
    return requests.head(url, timeout=5).headers["ETag"]


def test_a_new_fetcher_does_not_trust_a_prefilled_sink(nginx: Nginx) -> None:
    sink = MemorySink(b"x" * 1000)
    fetch(req(f"{nginx.http_url}/small.bin?t=fresh"), sink)
    assert sink.hexdigest() == sha256(SMALL) and sink.restarts == 1
    assert logged(nginx, "t=fresh")[0].range == ""


def test_resume_unvalidated_sends_a_bare_range(nginx: Nginx) -> None:
    sink = MemorySink(SMALL[:1000])
    fetch(req(f"{nginx.http_url}/small.bin?t=bare"), sink, HttpFetcher(resume_unvalidated=True))
    assert sink.hexdigest() == sha256(SMALL) and sink.restarts == 0
    [entry] = logged(nginx, "t=bare")
    assert (entry.status, entry.range, entry.if_range) == (206, "bytes=1000-", "")


def test_416_at_the_known_size_means_done(nginx: Nginx) -> None:
    url = f"{nginx.http_url}/small.bin?t=complete"
    sink = MemorySink(SMALL)
    fetch(req(url), sink, HttpFetcher(validator=etag_of(url)))
    assert sink.hexdigest() == sha256(SMALL) and sink.expected_sizes == [len(SMALL)]
    assert [e.status for e in logged(nginx, "t=complete")] == [416]


def test_a_server_ignoring_range_restarts_the_sink() -> None:
    content = os.urandom(4 * MiB)
    with FaultyServer(content) as server:
        server.drop_after(2 * MiB)
        server.ignore_range()
        sink = MemorySink()
        fetch_with_retries(HttpFetcher(), req(server.url), sink, sleep=lambda _: None)
    assert server.requests[1].range == f"bytes={2 * MiB}-"
    assert sink.restarts == 1 and sink.hexdigest() == sha256(content)


def test_a_changed_etag_makes_nginx_send_200_and_the_sink_restart() -> None:
    new = os.urandom(len(BIG))
    with Nginx() as server:
        path = server.add_file("changing.bin", BIG)
        url, sink = f"{server.http_url}/changing.bin", MemorySink()
        learnt = Learnt(sink)
        fetcher = HttpFetcher(on_validator=learnt)
        with pytest.raises(TerminalError):
            fetcher.fetch(req(url), sink, lambda: sink.offset >= MiB)
        old_etag = etag_of(url)
        path.write_bytes(new)
        os.utime(path, (time.time() + 10, time.time() + 10))  # a new mtime, so a new ETag
        fetch(req(url), sink, fetcher)
        new_etag = etag_of(url)
        entries = logged(server, "changing", 2)
    assert sink.restarts == 1 and sink.hexdigest() == sha256(new)
    assert (entries[1].range, entries[1].if_range) == (f"bytes={MiB}-", old_etag)
    assert entries[1].status == 200 and fetcher.validator == new_etag != old_etag
    # The new version's validator is told after the restart, before its first byte.
    assert learnt.calls == [(old_etag, 0, 0), (new_etag, 0, 1)]


# --- timeouts -------------------------------------------------------------------------------


def timed_failure(request: DownloadRequest) -> tuple[DownloadError, float]:
    started = time.monotonic()
    error = failure(request)
    return error, time.monotonic() - started


def test_stall_after_headers_is_a_read_timeout() -> None:
    with FaultyServer(os.urandom(MiB)) as server:
        server.stall_after_headers(10)
        error, elapsed = timed_failure(req(server.url, timeouts=Timeouts(read=1)))
    assert (error.code, error.terminal) == (DownloadFailure.READ_TIMEOUT, False)
    assert 0.9 <= elapsed < 2.5


def test_no_answer_at_all_is_a_read_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:  # never accepts
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/file"
        error, elapsed = timed_failure(req(url, timeouts=Timeouts(read=1)))
    assert error.code == DownloadFailure.READ_TIMEOUT and 0.9 <= elapsed < 2.5


def test_a_full_backlog_is_a_connect_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port, fillers = listener.getsockname()[1], []
        try:
            while True:  # fill the accept queue until the kernel drops our SYNs
                filler = socket.socket()
                fillers.append(filler)
                filler.settimeout(0.3)
                filler.connect(("127.0.0.1", port))
        except TimeoutError:
            pass
        try:
            error, elapsed = timed_failure(
                req(f"http://127.0.0.1:{port}/file", timeouts=Timeouts(connect=1))
            )
        finally:
            for filler in fillers:
                filler.close()
    assert (error.code, error.terminal) == (DownloadFailure.CONNECT_TIMEOUT, False)
    assert f"127.0.0.1:{port} timed out after 1 s" in error.message
    assert 0.9 <= elapsed < 2.5


def test_a_refused_connection_is_a_transient_connection_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    error, elapsed = timed_failure(req(f"http://127.0.0.1:{port}/file"))
    assert (error.code, error.terminal) == (DownloadFailure.CONNECTION, False)
    assert "refused" in error.message and elapsed < 1


# --- redirects and cancellation -------------------------------------------------------------


def test_a_redirect_to_another_path_is_followed(nginx: Nginx) -> None:
    sink = MemorySink()
    fetch(req(f"{nginx.http_url}/redirect/same"), sink)
    assert sink.hexdigest() == sha256(SMALL)
    assert logged(nginx, "t=same-target")[0].status == 200


def test_a_redirect_to_a_file_url_is_unsafe(nginx: Nginx, file_url: str) -> None:
    error = failure(req(f"{nginx.http_url}/redirect/file"))
    assert (error.code, error.terminal) == (DownloadFailure.UNSAFE_REDIRECT, True)
    assert file_url in error.message


def test_an_https_to_http_redirect_is_unsafe(nginx: Nginx) -> None:
    request = req(f"{nginx.https_url}/redirect/downgrade", extra_ca_file=str(nginx.cert_pem_path))
    error = failure(request)
    assert (error.code, error.terminal) == (DownloadFailure.UNSAFE_REDIRECT, True)
    assert f"{nginx.http_url}/small.bin" in error.message


def test_ten_redirects_are_followed_and_eleven_refused(nginx: Nginx) -> None:
    sink = MemorySink()
    fetch(req(f"{nginx.http_url}/hop/1"), sink)
    assert sink.hexdigest() == sha256(SMALL)
    error = failure(req(f"{nginx.http_url}/hop/0"))
    assert (error.code, error.terminal) == (DownloadFailure.UNSAFE_REDIRECT, True)
    assert "more than 10 redirects" in error.message


def test_credentials_are_dropped_on_a_redirect_to_another_host() -> None:
    headers = {"Authorization": "Bearer abc", "X-Auth-Token": "t", "X-Test": "kept"}
    with FaultyServer(SMALL) as target:
        redirects = {"/away": f"http://localhost:{target.port}/file", "/here": "{http_url}/x"}
        with Nginx(redirects=redirects) as server:
            server.add_file("x", SMALL)
            fetch(req(f"{server.http_url}/away", headers=headers), MemorySink())
            fetch(req(f"{server.http_url}/here", headers=headers), MemorySink())
            here = logged(server, "/x")[0]
    seen = target.requests[0].headers
    assert seen["x-test"] == "kept"
    assert "authorization" not in seen and "x-auth-token" not in seen
    assert here.authorization == "Bearer abc"


def test_cancelling_mid_transfer_is_cancelled(nginx: Nginx) -> None:
    sink, started = MemorySink(), time.monotonic()
    with pytest.raises(TerminalError) as caught:  # /slow/ sends 4 MB/s: 4-5 s for the file
        HttpFetcher().fetch(
            req(f"{nginx.http_url}/slow/big.bin"), sink, lambda: sink.offset >= 2 * MiB
        )
    assert (
        caught.value.code == DownloadFailure.CANCELLED and "at byte 2097152" in caught.value.message
    )
    assert sink.offset == 2 * MiB and time.monotonic() - started < 2


def test_retries_give_up_naming_the_attempts() -> None:
    with FaultyServer(SMALL) as server:
        server.status(502, times=10)
        with pytest.raises(TransientError) as caught:
            fetch_with_retries(
                HttpFetcher(), req(server.url), MemorySink(), max_attempts=3, sleep=lambda _: None
            )
    assert caught.value.code == DownloadFailure.HTTP_SERVER
    assert "after 3 attempts" in caught.value.message and len(server.requests) == 3
