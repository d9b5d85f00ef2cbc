"""The agent's protocol table: complete at wiring, the one place PoolTransfer gets fetchers."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from directdl.contracts.checksum import Checksum
from directdl.contracts.download import DownloadFailure
from directdl.contracts.template import SourceProtocol
from directdl_testing.transfers import command, transfer
from host_agent.download.core import (
    DownloadRequest,
    Opened,
    Opener,
    Resume,
    Sink,
    TerminalError,
)
from host_agent.download.http import HttpFetcher
from host_agent.download.nfs import NfsFetcher
from host_agent.download.protocols import OPENERS, direct
from host_agent.transfer import PoolTransfer

pytestmark = pytest.mark.unit

DATA = b"template bytes " * 1000


def never() -> bool:
    return False


class Serves:
    """A Fetcher that writes `data` in one piece; counts the instances made."""

    made = 0

    def __init__(self, data: bytes) -> None:
        self.data = data
        Serves.made += 1

    def fetch(self, request: DownloadRequest, sink: Sink, cancelled: Callable[[], bool]) -> None:
        sink.write(self.data)


def opening(name: str, data: bytes, checksum: Checksum | None = None) -> Opener:
    def open_source(
        request: DownloadRequest, cancelled: Callable[[], bool], attempts: int
    ) -> Opened:
        return Opened(name=name, fetcher=lambda resume: Serves(data), checksum=checksum)

    return open_source


def test_the_table_opens_every_protocol_of_the_contract() -> None:
    assert set(OPENERS) == set(SourceProtocol)


def test_a_table_missing_a_protocol_fails_at_wiring(tmp_path: Path) -> None:
    partial = {p: o for p, o in OPENERS.items() if p is not SourceProtocol.NFS}
    with pytest.raises(ValueError, match="no fetcher for protocol nfs"):
        PoolTransfer(tmp_path, openers=partial)


@pytest.mark.parametrize(
    ("protocol", "url", "fetcher", "name"),
    [
        (SourceProtocol.HTTP, "http://h.example/d.qcow2", HttpFetcher, "d.qcow2"),
        (SourceProtocol.HTTPS, "https://h.example/a/disk%2Eraw.gz?s=x", HttpFetcher, "disk.raw.gz"),
        (SourceProtocol.NFS, "nfs://h.example/export/d.qcow2", NfsFetcher, "d.qcow2"),
    ],
)
def test_a_direct_protocol_names_the_file_from_its_url(
    protocol: SourceProtocol, url: str, fetcher: type, name: str
) -> None:
    opened = OPENERS[protocol](DownloadRequest(url), never, 1)
    assert opened.name == name and opened.checksum is None
    assert isinstance(opened.fetcher(Resume()), fetcher)
    assert opened.fetcher(Resume()) is not opened.fetcher(Resume())  # fresh for each download


@pytest.mark.parametrize("protocol", [SourceProtocol.HTTP, SourceProtocol.HTTPS])
def test_an_http_fetcher_gets_the_jobs_validator_and_stores_new_ones(
    protocol: SourceProtocol,
) -> None:
    learnt: list[str | None] = []
    opened = OPENERS[protocol](DownloadRequest(f"{protocol}://h.example/d.raw"), never, 1)
    fetcher = opened.fetcher(Resume(validator='"v1"', remember=learnt.append))
    assert isinstance(fetcher, HttpFetcher)
    assert fetcher.validator == '"v1"'
    assert fetcher.on_validator is not None
    fetcher.on_validator('"v2"')
    assert learnt == ['"v2"']
    assert opened.fetcher(Resume()).validator is None


def test_direct_wraps_any_fetcher_factory() -> None:
    given: list[Resume] = []

    def serves(resume: Resume) -> Serves:
        given.append(resume)
        return Serves(DATA)

    resume = Resume(validator="Tue, 01 Jul 2025 10:00:00 GMT")
    opened = direct(serves)(DownloadRequest("sftp://h/x/d.raw"), never, 1)
    assert opened.name == "d.raw" and isinstance(opened.fetcher(resume), Serves)
    assert given == [resume]


def test_the_opened_name_says_the_compression(tmp_path: Path) -> None:
    done = transfer(tmp_path, opening("d.raw.gz", gzip.compress(DATA)))(
        command(), lambda *_: None, never
    )
    assert Path(done.path).read_bytes() == DATA
    assert done.digest == "{SHA-256}" + hashlib.sha256(gzip.compress(DATA)).hexdigest()
    assert done.image_digest == "{SHA-256}" + hashlib.sha256(DATA).hexdigest()


def test_the_source_checksum_is_verified_when_the_command_has_none(tmp_path: Path) -> None:
    right = Checksum("SHA-1", hashlib.sha1(DATA).hexdigest())
    done = transfer(tmp_path, opening("d.raw", DATA, right))(command(), lambda *_: None, never)
    assert done.verified_digest == str(right)

    wrong = Checksum("SHA-1", "0" * 40)
    Serves.made = 0
    with pytest.raises(TerminalError) as caught:
        transfer(tmp_path, opening("d.raw", DATA, wrong))(
            command(checksum_attempts=3), lambda *_: None, never
        )
    assert caught.value.code is DownloadFailure.CHECKSUM_MISMATCH
    assert Serves.made == 3  # one fresh fetcher per download
    assert [p.name for p in tmp_path.iterdir()] == [Path(done.path).name]


def test_the_command_checksum_wins_over_the_source_one(tmp_path: Path) -> None:
    asked = f"{{MD5}}{hashlib.md5(DATA).hexdigest()}"
    done = transfer(tmp_path, opening("d.raw", DATA, Checksum("SHA-1", "0" * 40)))(
        command(checksum=asked), lambda *_: None, never
    )
    assert done.verified_digest == asked
