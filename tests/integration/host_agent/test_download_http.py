"""HttpFetcher's TLS context against a real nginx: made only for https, redirects included."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest

from directdl.contracts.download import DownloadFailure
from directdl_testing.nginx import Nginx
from directdl_testing.sinks import MemorySink
from host_agent.download import http as http_module
from host_agent.download.core import DownloadRequest, TerminalError
from host_agent.download.http import HttpFetcher

pytestmark = pytest.mark.integration

DATA = os.urandom(300 * 1024)


@pytest.fixture(scope="module")
def nginx() -> Iterator[Nginx]:
    with Nginx(redirects={"/up": "{https_url}/data.bin"}) as server:
        server.add_file("data.bin", DATA)
        yield server


def fetch(url: str, extra_ca_file: str | None = None) -> MemorySink:
    sink = MemorySink()
    request = DownloadRequest(url=url, extra_ca_file=extra_ca_file)
    HttpFetcher().fetch(request, sink, lambda: False)
    return sink


def test_a_plain_http_download_loads_no_ca_store(
    nginx: Nginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(extra_ca_file: str | None) -> None:
        raise AssertionError("an http download built a TLS context")

    monkeypatch.setattr(http_module, "_ssl_context", refuse)
    assert fetch(f"{nginx.http_url}/data.bin").hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_a_redirect_up_to_https_verifies_with_the_extra_ca(nginx: Nginx) -> None:
    sink = fetch(f"{nginx.http_url}/up", extra_ca_file=str(nginx.cert_pem_path))
    assert sink.hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_a_redirect_up_to_https_without_the_extra_ca_is_tls(nginx: Nginx) -> None:
    with pytest.raises(TerminalError) as caught:
        fetch(f"{nginx.http_url}/up")
    assert caught.value.code is DownloadFailure.TLS
    assert "certificate verify failed" in caught.value.message
