"""The agent's fetchers under the destination policy: every address checked before it is
connected to, redirects and mirrors included, and connections pinned to the checked address.
A listener on the denied address proves that nothing reached it."""

from __future__ import annotations

import socket
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from directdl.contracts.download import DownloadFailure, DownloadTemplate
from directdl.contracts.template import SourceProtocol, TemplateFormat
from directdl.destinations import DestinationPolicy
from directdl.metalink import Metalink
from directdl_testing.certs import make_self_signed
from directdl_testing.faulty_http import FaultyServer
from directdl_testing.listeners import CountingListener, ScriptedServer
from directdl_testing.metalinks import write_meta4
from directdl_testing.nginx import Nginx
from directdl_testing.sinks import MemorySink
from host_agent.download.core import DownloadError, DownloadRequest, Timeouts
from host_agent.download.http import HttpFetcher
from host_agent.download.mirrors import MirrorFetcher
from host_agent.download.nfs import NfsFetcher
from host_agent.transfer import PoolTransfer

pytestmark = pytest.mark.integration

DATA = b"template bytes " * 1000
DENY_2 = DestinationPolicy.parse("127.0.0.2/32", "")
DENY_1 = DestinationPolicy.parse("127.0.0.1/32", "")
FAST = Timeouts(connect=2, read=2)


def request(url: str, policy: DestinationPolicy, **fields: Any) -> DownloadRequest:
    return DownloadRequest(url, timeouts=FAST, policy=policy, **fields)


def refusal(fetcher: Any, req: DownloadRequest) -> DownloadError:
    with pytest.raises(DownloadError) as caught:
        fetcher.fetch(req, MemorySink(), lambda: False)
    return caught.value


@pytest.fixture
def trap() -> Iterator[CountingListener]:
    with CountingListener("127.0.0.2") as listener:
        yield listener


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    with FaultyServer(DATA) as faulty:
        yield faulty


def test_a_redirect_to_a_denied_address_is_refused_before_it_is_connected_to(
    trap: CountingListener,
) -> None:
    with ScriptedServer(302, {"Location": trap.url("/latest/meta-data")}) as redirector:
        error = refusal(HttpFetcher(), request(redirector.url("/a.raw?sig=secret"), DENY_2))

    assert (error.code, error.terminal) == (DownloadFailure.DESTINATION_DENIED, True)
    assert "127.0.0.2 is in denied network 127.0.0.2/32" in error.message
    assert f"{redirector.url('/a.raw')}?*** redirects to {trap.url('/latest/meta-data')}" in (
        error.message
    )
    assert redirector.requests == 1 and trap.accepted == 0


def test_a_name_that_resolves_to_a_denied_address_is_refused_unconnected() -> None:
    with CountingListener("127.0.0.1") as listener:
        error = refusal(HttpFetcher(), request(f"http://localhost:{listener.port}/a.raw", DENY_1))
        assert listener.accepted == 0
    assert error.code is DownloadFailure.DESTINATION_DENIED
    assert "localhost resolves to 127.0.0.1, which is in denied network 127.0.0.1/32" in (
        error.message
    )


def test_the_default_policy_refuses_the_metadata_address_unconnected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[object] = []
    monkeypatch.setattr(socket.socket, "connect", lambda *args: opened.append(args))
    error = refusal(HttpFetcher(), request("http://169.254.169.254/x.raw", DestinationPolicy()))
    assert error.code is DownloadFailure.DESTINATION_DENIED and opened == []
    assert "169.254.169.254 is in denied network 169.254.0.0/16" in error.message


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`rebind.test` resolves to 127.0.0.1 once, then to 127.0.0.2: a DNS-rebinding attack."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        asked.append(host)
        address = "127.0.0.1" if len(asked) == 1 else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_the_connection_goes_to_the_checked_address_not_to_a_second_answer(
    server: FaultyServer, rebinding: list[str]
) -> None:
    sink = MemorySink()
    with CountingListener("127.0.0.2", server.port) as second:
        HttpFetcher().fetch(
            request(f"http://rebind.test:{server.port}/a.raw", DENY_2), sink, lambda: False
        )
        assert second.accepted == 0
    assert bytes(sink.data) == DATA
    assert rebinding == ["rebind.test"]  # one lookup, for the one connection
    assert server.requests[0].headers["host"] == f"rebind.test:{server.port}"


def test_tls_verifies_the_url_host_name_while_connecting_to_the_checked_address(
    tmp_path: Path,
) -> None:
    cert, key = make_self_signed("localhost", ["DNS:localhost"])  # no IP:127.0.0.1 in it
    with Nginx(cert_pem=cert, key_pem=key) as nginx:
        nginx.add_file("a.raw", DATA)
        trusted = {"extra_ca_file": str(nginx.cert_pem_path)}
        by_name = f"https://localhost:{nginx.https_port}/a.raw"
        by_address = f"{nginx.https_url}/a.raw"
        sink = MemorySink()
        HttpFetcher().fetch(request(by_name, DestinationPolicy(), **trusted), sink, lambda: False)
        error = refusal(HttpFetcher(), request(by_address, DestinationPolicy(), **trusted))
    assert bytes(sink.data) == DATA
    assert error.code is DownloadFailure.TLS


def test_a_denied_mirror_is_skipped_unconnected_and_the_next_one_serves(
    trap: CountingListener, server: FaultyServer
) -> None:
    metalink = Metalink("a.raw", len(DATA), {}, [trap.url(), server.url])
    sink = MemorySink()
    MirrorFetcher(metalink).fetch(request(trap.url(), DENY_2), sink, lambda: False)
    assert bytes(sink.data) == DATA and trap.accepted == 0


def test_a_metalink_whose_mirrors_are_all_denied_fails_as_denied(
    trap: CountingListener, tmp_path: Path
) -> None:
    with Nginx() as nginx:
        nginx.add_file("a.meta4", write_meta4("a.raw", len(DATA), {}, [(trap.url(), 1)]))
        cmd = DownloadTemplate(
            job_id=str(uuid.uuid4()),
            deploy_id=str(uuid.uuid4()),
            template_id=str(uuid.uuid4()),
            url=f"{nginx.http_url}/a.meta4",
            protocol=SourceProtocol.METALINK,
            format=TemplateFormat.RAW,
            denied_networks=["127.0.0.2/32"],
            max_attempts=1,
        )
        with pytest.raises(DownloadError) as caught:
            PoolTransfer(tmp_path)(cmd, lambda *_: None, lambda: False)
    assert (caught.value.code, caught.value.terminal) == (DownloadFailure.DESTINATION_DENIED, True)
    assert "127.0.0.2 is in denied network 127.0.0.2/32" in caught.value.message
    assert trap.accepted == 0 and list(tmp_path.iterdir()) == []


@pytest.fixture
def nfs_tools(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Stand-ins for nfs-ls and nfs-cat that log the URL they were handed."""
    log = tmp_path / "argv.log"
    tools = {}
    for name, output in (("nfs_ls", ""), ("nfs_cat", "hello")):
        tool = tmp_path / name
        tool.write_text(f'#!/bin/sh\necho "$@" >> {log}\nprintf "{output}"\n')
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
        tools[name] = str(tool)
    return tools, log


def test_a_denied_nfs_server_is_refused_before_the_client_runs(
    trap: CountingListener, nfs_tools: tuple[dict[str, str], Path]
) -> None:
    tools, log = nfs_tools
    url = f"nfs://127.0.0.2:{trap.port}/export/a.raw"
    error = refusal(NfsFetcher(**tools), request(url, DENY_2))
    assert (error.code, error.terminal) == (DownloadFailure.DESTINATION_DENIED, True)
    assert "127.0.0.2 is in denied network 127.0.0.2/32" in error.message
    assert trap.accepted == 0 and not log.exists()


def test_an_nfs_name_resolving_to_a_denied_address_is_refused(
    nfs_tools: tuple[dict[str, str], Path],
) -> None:
    tools, log = nfs_tools
    error = refusal(NfsFetcher(**tools), request("nfs://localhost/export/a.raw", DENY_1))
    assert (
        error.code is DownloadFailure.DESTINATION_DENIED
        and "localhost resolves to" in error.message
    )
    assert not log.exists()


def test_the_nfs_client_is_handed_the_checked_address(
    nfs_tools: tuple[dict[str, str], Path], rebinding: list[str]
) -> None:
    tools, log = nfs_tools
    sink = MemorySink()
    NfsFetcher(**tools).fetch(
        request("nfs://rebind.test/export/dir/a.raw", DENY_2), sink, lambda: False
    )
    assert bytes(sink.data) == b"hello"
    assert rebinding == ["rebind.test"]
    assert log.read_text().split() == [
        "nfs://127.0.0.1/export/dir?version=4",
        "nfs://127.0.0.1/export/dir/a.raw?version=4",
    ]
