"""NfsFetcher against a real nfs-ganesha through libnfs's nfs-ls and nfs-cat."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from directdl.contracts.download import DownloadFailure
from directdl_testing.ganesha import Ganesha
from directdl_testing.sinks import MemorySink
from host_agent.download.core import (
    DownloadError,
    DownloadRequest,
    TerminalError,
    Timeouts,
    TransientError,
)
from host_agent.download.nfs import CHUNK, NfsFetcher, classify, libnfs_url

pytestmark = pytest.mark.integration

SIZE = 30 * 1024 * 1024 + 12345  # not a whole number of chunks
TIMEOUTS = Timeouts(connect=3.0, read=1.0)


def never() -> bool:
    return False


@pytest.fixture(scope="module")
def server() -> Iterator[Ganesha]:
    """One server for the tests that leave it running and unchanged."""
    with Ganesha() as ganesha:
        yield ganesha


@pytest.fixture
def own_server() -> Iterator[Ganesha]:
    """A server of its own, for tests that stop, freeze or change it."""
    with Ganesha() as ganesha:
        yield ganesha


@pytest.fixture(scope="module")
def big_file(server: Ganesha) -> tuple[str, str]:
    """(URL, sha256) of a random file of SIZE bytes."""
    return put(server, "images/big.qcow2", os.urandom(SIZE))


def put(server: Ganesha, relative: str, data: bytes) -> tuple[str, str]:
    path = server.export_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return server.url_for(relative), hashlib.sha256(data).hexdigest()


def fetch(url: str, sink: MemorySink, cancelled: Callable[[], bool] = never) -> None:
    NfsFetcher().fetch(DownloadRequest(url, timeouts=TIMEOUTS), sink, cancelled)


def failure(
    url: str, sink: MemorySink | None = None, **kwargs: Callable[[], bool]
) -> DownloadError:
    with pytest.raises(DownloadError) as caught:
        fetch(url, sink or MemorySink(), **kwargs)
    assert not nfs_children(), "an nfs-cat or nfs-ls was left behind"
    return caught.value


def nfs_children() -> list[str]:
    """nfs-cat/nfs-ls processes whose parent is this test, zombies included."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" (", 1)
        except OSError:
            continue
        comm, fields = rest.rsplit(") ", 1)
        if comm.startswith("nfs-") and int(fields.split()[1]) == os.getpid():
            found.append(f"{pid} {comm} {fields.split()[0]}")
    return found


class ActingSink(MemorySink):
    """Runs `action` once, on the first write: the transfer is then under way."""

    def __init__(self, action: Callable[[], None]) -> None:
        super().__init__()
        self._action: Callable[[], None] | None = action

    def write(self, chunk: bytes) -> None:
        super().write(chunk)
        action, self._action = self._action, None
        if action is not None:
            action()


def test_a_large_file_arrives_whole(big_file: tuple[str, str]) -> None:
    url, digest = big_file
    sink = MemorySink()

    started = time.monotonic()
    fetch(url, sink)
    elapsed = time.monotonic() - started

    assert sink.hexdigest() == digest
    assert sink.offset == SIZE
    assert sink.expected_sizes == [SIZE]
    assert sink.restarts == 0
    # Whole chunks but the last.
    assert sink.writes == -(-SIZE // CHUNK)
    assert not nfs_children()
    print(f"{SIZE / 1e6:.0f} MB in {elapsed:.2f} s")


def test_a_partial_file_is_dropped_and_read_again(big_file: tuple[str, str]) -> None:
    url, digest = big_file
    sink = MemorySink(initial=b"left by an earlier attempt")

    fetch(url, sink)

    assert sink.restarts == 1  # nfs-cat cannot start at an offset
    assert sink.hexdigest() == digest
    assert sink.expected_sizes == [SIZE]


def test_a_file_in_a_subdirectory(server: Ganesha) -> None:
    url, digest = put(server, "a/b c/template 1.raw", b"x" * 1000)
    assert url.endswith("/export/a/b%20c/template%201.raw")
    sink = MemorySink()

    fetch(url, sink)

    assert sink.hexdigest() == digest
    assert sink.expected_sizes == [1000]


def test_an_empty_file(server: Ganesha) -> None:
    url, digest = put(server, "empty.iso", b"")
    sink = MemorySink()
    fetch(url, sink)
    assert (sink.hexdigest(), sink.expected_sizes) == (digest, [0])


def test_without_a_size_from_the_listing_the_file_still_arrives(
    big_file: tuple[str, str],
) -> None:
    # A stale directory cache on the server can leave a readable file out of the listing;
    # `true` as nfs-ls lists nothing at all.
    url, digest = big_file
    sink = MemorySink()

    NfsFetcher(nfs_ls="true").fetch(DownloadRequest(url), sink, never)

    assert (sink.hexdigest(), sink.expected_sizes) == (digest, [None])


def test_a_file_missing_from_the_listing_and_the_server_is_not_found(server: Ganesha) -> None:
    url = server.url_for("images/gone.qcow2")
    with pytest.raises(TerminalError) as caught:
        NfsFetcher(nfs_ls="true").fetch(DownloadRequest(url), MemorySink(), never)
    assert caught.value.code is DownloadFailure.NOT_FOUND


def test_fewer_bytes_than_listed_is_a_short_read(big_file: tuple[str, str], tmp_path: Path) -> None:
    # nfs-cat reads up to the size it sees itself and exits 0, so a file that changed
    # between the listing and the read shows only as a byte count that does not match.
    url, _ = big_file
    fake_ls = tmp_path / "nfs-ls"
    fake_ls.write_text(f"#!/bin/sh\necho '-rw-r--r--  1 0 0 {SIZE + 1} big.qcow2'\n")
    fake_ls.chmod(0o755)
    sink = MemorySink()

    with pytest.raises(TransientError) as caught:
        NfsFetcher(nfs_ls=str(fake_ls)).fetch(DownloadRequest(url), sink, never)

    assert caught.value.code is DownloadFailure.SIZE_MISMATCH
    assert caught.value.message == f"short read from {url}: got {SIZE} of {SIZE + 1} bytes"


@pytest.mark.parametrize("relative", ["images/missing.qcow2", "no/such/dir/t.qcow2"])
def test_a_missing_file_is_not_found(server: Ganesha, relative: str) -> None:
    url = server.url_for(relative)
    error = failure(url)
    assert isinstance(error, TerminalError)
    assert error.code is DownloadFailure.NOT_FOUND
    assert url in error.message


def test_a_directory_is_refused(server: Ganesha) -> None:
    put(server, "adir/inside.raw", b"x")
    error = failure(server.url_for("adir"))
    assert (type(error), error.code) == (TerminalError, DownloadFailure.NFS)
    assert "is a directory" in error.message


def test_permission_denied_is_terminal(server: Ganesha) -> None:
    url, _ = put(server, "private.raw", b"secret")
    (server.export_dir / "private.raw").chmod(0o600)
    # libnfs options ride in the query string: read as an unprivileged user.
    error = failure(f"{url}?uid=1000&gid=1000")
    assert (type(error), error.code) == (TerminalError, DownloadFailure.NFS)
    assert "permission denied" in error.message
    assert "NFS4ERR_ACCESS" in error.message


def test_a_stopped_server_is_transient(own_server: Ganesha) -> None:
    url, _ = put(own_server, "t.qcow2", b"x" * 100)
    own_server.stop()

    error = failure(url)

    assert (type(error), error.code) == (TransientError, DownloadFailure.NFS)
    assert url in error.message


def test_a_server_that_dies_half_way_is_transient(own_server: Ganesha) -> None:
    url, _ = put(own_server, "t.qcow2", os.urandom(SIZE))
    sink = ActingSink(own_server.stop)

    error = failure(url, sink)

    # CloudStack reports success here, whatever nfs-cat's exit status; this must not.
    assert (type(error), error.code) == (TransientError, DownloadFailure.NFS)
    assert "exited 10 (Failed to read from file)" in error.message
    assert sink.offset < SIZE


def test_a_hung_server_times_out_before_any_byte(own_server: Ganesha) -> None:
    url, _ = put(own_server, "t.qcow2", b"x" * 100)
    own_server.freeze()

    started = time.monotonic()
    error = failure(url)

    assert (type(error), error.code) == (TransientError, DownloadFailure.CONNECT_TIMEOUT)
    assert time.monotonic() - started < TIMEOUTS.connect + TIMEOUTS.read + 2


def test_a_server_that_hangs_half_way_times_out(own_server: Ganesha) -> None:
    url, _ = put(own_server, "t.qcow2", os.urandom(SIZE))
    sink = ActingSink(own_server.freeze)

    started = time.monotonic()
    error = failure(url, sink)

    assert (type(error), error.code) == (TransientError, DownloadFailure.READ_TIMEOUT)
    assert time.monotonic() - started < TIMEOUTS.read + 3
    assert 0 < sink.offset < SIZE


def test_a_file_that_shrinks_while_read_does_not_hang(own_server: Ganesha) -> None:
    # nfs-cat reads up to the size it saw at open; past the new end it spins on empty
    # reads for ever, printing nothing. The read timeout is what ends it.
    url, _ = put(own_server, "t.qcow2", os.urandom(SIZE))
    path = own_server.export_dir / "t.qcow2"
    sink = ActingSink(lambda: os.truncate(path, CHUNK))

    error = failure(url, sink)

    assert (type(error), error.code) == (TransientError, DownloadFailure.READ_TIMEOUT)


def test_cancel_stops_the_transfer(big_file: tuple[str, str]) -> None:
    url, _ = big_file
    sink = MemorySink()

    error = failure(url, sink, cancelled=lambda: sink.offset > 0)

    assert (type(error), error.code) == (TerminalError, DownloadFailure.CANCELLED)
    assert sink.offset < SIZE


@pytest.mark.parametrize(
    "tools", [{"nfs_ls": "/nonexistent/nfs-ls"}, {"nfs_cat": "/nonexistent/nfs-cat"}]
)
def test_a_missing_client_tool_is_named(big_file: tuple[str, str], tools: dict[str, str]) -> None:
    url, _ = big_file
    with pytest.raises(TerminalError) as caught:
        NfsFetcher(**tools).fetch(DownloadRequest(url), MemorySink(), never)
    assert caught.value.code is DownloadFailure.INTERNAL
    assert next(iter(tools.values())) in caught.value.message


# The URL rewrite and the stderr classification need no server.


@pytest.mark.parametrize(
    ("url", "file", "directory"),
    [
        (
            "nfs://10.1.1.5:20490/export/t/a.qcow2",
            "nfs://10.1.1.5/export/t/a.qcow2?nfsport=20490&version=4",
            "nfs://10.1.1.5/export/t?nfsport=20490&version=4",
        ),
        (
            "nfs://nfs.example.org/export/a.qcow2",
            "nfs://nfs.example.org/export/a.qcow2?version=4",
            "nfs://nfs.example.org/export?version=4",
        ),
        (
            "nfs://h/export/my%20image.raw?version=3&uid=0",
            "nfs://h/export/my image.raw?version=3&uid=0",
            "nfs://h/export?version=3&uid=0",
        ),
        (
            "nfs://[fd00::5]:2049/export/a.raw",
            "nfs://[fd00::5]/export/a.raw?nfsport=2049&version=4",
            "nfs://[fd00::5]/export?nfsport=2049&version=4",
        ),
    ],
)
def test_libnfs_url(url: str, file: str, directory: str) -> None:
    target = libnfs_url(url)
    assert (target.file, target.directory) == (file, directory)


@pytest.mark.parametrize(
    "url",
    [
        "http://h/export/a.raw",
        "nfs:///export/a.raw",
        "nfs://h/a.raw",
        "nfs://h/export/",
        "nfs://h:port/export/a.raw",
        "nfs://h:20490/export/a.raw?nfsport=2049",
        "nfs://h/export/what%3F.raw",
    ],
)
def test_bad_urls_are_terminal(url: str) -> None:
    with pytest.raises(TerminalError) as caught:
        libnfs_url(url)
    assert caught.value.code is DownloadFailure.NFS
    assert url in caught.value.message


@pytest.mark.parametrize(
    ("stderr", "kind", "code"),
    [
        (
            'open call failed with "NFS4: (path /) failed with NFS4ERR_NOENT(-2)"',
            TerminalError,
            DownloadFailure.NOT_FOUND,
        ),
        (
            "mount_cb: NFS4: (path /x) failed with NFS4ERR_NOENT(-2)",
            TerminalError,
            DownloadFailure.NOT_FOUND,
        ),
        ("Mount failed with error MNT3ERR_ACCES(13)", TerminalError, DownloadFailure.NFS),
        ('failed with NFS4ERR_ACCESS(-13)"', TerminalError, DownloadFailure.NFS),
        ("Failed to mount nfs share : nfs_service failed", TransientError, DownloadFailure.NFS),
        (
            "Invalid address:h. Can not resolv into IPv4/v6 structure.",
            TransientError,
            DownloadFailure.NFS,
        ),
        ("Failed to read from file", TransientError, DownloadFailure.NFS),
        ("", TransientError, DownloadFailure.NFS),
    ],
)
def test_classify(stderr: str, kind: type[DownloadError], code: DownloadFailure) -> None:
    error = classify("nfs://h/e/f", 10, stderr)
    assert (type(error), error.code) == (kind, code)
    assert error.message.startswith(("no such file", "permission denied", "NFS server failed"))
