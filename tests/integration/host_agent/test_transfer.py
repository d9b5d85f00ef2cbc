"""PoolTransfer end to end against real servers: metalink (with aria2c as the reference), HTTP,
NFS; the pool holds the final file after a success and nothing at all after a failure."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from directdl.contracts.download import DownloadFailure, DownloadTemplate
from directdl.contracts.template import SourceProtocol, TemplateFormat
from directdl_testing.faulty_http import FaultyServer
from directdl_testing.ganesha import Ganesha
from directdl_testing.metalinks import write_meta4, write_metalink_v3
from directdl_testing.nginx import AccessLogEntry, Nginx
from directdl_testing.waiting import wait_until
from host_agent.download.core import DownloadError
from host_agent.download.http import CHUNK_SIZE
from host_agent.jobs import Transferred
from host_agent.transfer import PoolTransfer

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
TiB = 1024 * 1024 * MiB
DATA = os.urandom(8 * MiB + 12345)  # not a whole number of 1 MiB chunks
NAME = "disk.raw"
ARIA2C_TIMEOUT_S = 60

Writer = Callable[..., bytes]
VERSIONS = [
    # (writer, suffix, dead mirror's rank, live mirror's rank): the dead one is preferred.
    pytest.param(write_meta4, "meta4", 1, 2, id="v4"),
    pytest.param(write_metalink_v3, "metalink", 100, 50, id="v3"),
]


def digest(algorithm: str, data: bytes) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def never() -> bool:
    return False


def ignore(done: int, total: int | None) -> None:
    pass


def command(url: str, protocol: SourceProtocol, **fields: Any) -> DownloadTemplate:
    fields.setdefault("format", TemplateFormat.RAW)
    return DownloadTemplate(
        job_id=str(uuid.uuid4()),
        deploy_id=str(uuid.uuid4()),
        template_id=str(uuid.uuid4()),
        url=url,
        protocol=protocol,
        **fields,
    )


def stored(
    pool: Path, cmd: DownloadTemplate, data: bytes, downloaded: bytes | None = None
) -> Transferred:
    """Run the transfer; check the pool holds exactly the final file with `data` in it."""
    result = PoolTransfer(pool)(cmd, ignore, never)
    final = pool / cmd.template_id
    assert os.listdir(pool) == [cmd.template_id]  # no .part left behind
    assert digest("sha256", final.read_bytes()) == digest("sha256", data)
    assert (result.path, result.size) == (str(final), len(data))
    assert result.digest == "{SHA-256}" + digest("sha256", downloaded or data)
    assert result.image_digest == "{SHA-256}" + digest("sha256", data)  # the file's own
    return result


def failed(
    pool: Path,
    cmd: DownloadTemplate,
    progress: Callable[[int, int | None], None] = ignore,
    cancelled: Callable[[], bool] = never,
) -> DownloadError:
    with pytest.raises(DownloadError) as info:
        PoolTransfer(pool)(cmd, progress, cancelled)
    assert os.listdir(pool) == []
    return info.value


def requests_for(nginx: Nginx, path: str, count: int = 1) -> list[AccessLogEntry]:
    """The logged requests for `path`, once there are at least `count` of them: nginx logs a
    request after its response ends, which may be just after the client has read the body."""

    def logged() -> list[AccessLogEntry]:
        entries = [entry for entry in nginx.access_log_lines() if entry.uri == path]
        return entries if len(entries) >= count else []

    return wait_until(logged, what=f"{count} requests for {path} in nginx's access log")


def resumed_at(range_header: str | None, dropped_at: int) -> int:
    """The first byte asked for on resuming; it must be close to where the drop happened.

    urllib3 discards the bytes of a chunk cut short by the drop (IncompleteRead), so the
    sink holds whole CHUNK_SIZE chunks only: the resume may start up to a chunk earlier.
    """
    match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
    assert match is not None, f"not a resume: Range {range_header!r}"
    start = int(match[1])
    assert max(dropped_at - CHUNK_SIZE, 0) < start <= dropped_at
    return start


def aria2c(document: Path, out: Path) -> tuple[int, str]:
    if shutil.which("aria2c") is None:
        pytest.fail("aria2c not found; install it with: apt-get install -y aria2", pytrace=False)
    done = subprocess.run(
        [
            "aria2c", "-M", str(document), "-d", str(out),
            "--summary-interval=0", "--enable-color=false", "--allow-overwrite=true",
        ],
        capture_output=True, text=True, timeout=ARIA2C_TIMEOUT_S, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    path = tmp_path / "pool"
    path.mkdir()
    return path


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx() as server:
        server.add_file(NAME, DATA)
        yield server


@pytest.fixture
def dead_url() -> str:
    """A URL on a closed port: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{NAME}"


@pytest.fixture(scope="module")
def ganesha() -> Iterator[Ganesha]:
    with Ganesha() as server:
        yield server


def serve_metalink(nginx: Nginx, suffix: str, document: bytes) -> str:
    nginx.add_file(f"t.{suffix}", document)
    return f"{nginx.http_url}/t.{suffix}"


# 1. Metalink: failover, the same bytes and verdict as aria2c, which hash counts, the size.


@pytest.mark.parametrize(("write", "suffix", "dead_rank", "live_rank"), VERSIONS)
def test_metalink_fails_over_a_dead_mirror_and_matches_aria2c(
    nginx: Nginx, pool: Path, tmp_path: Path, dead_url: str, write: Writer, suffix: str,
    dead_rank: int, live_rank: int,
) -> None:  # fmt: skip
    sha256 = digest("sha256", DATA)
    live = f"{nginx.http_url}/{NAME}"
    document = write(
        NAME, len(DATA), {"SHA-256": sha256}, [(live, live_rank), (dead_url, dead_rank)]
    )
    cmd = command(serve_metalink(nginx, suffix, document), SourceProtocol.METALINK)

    result = stored(pool, cmd, DATA)

    assert result.verified_digest == "{SHA-256}" + sha256
    (tmp_path / f"t.{suffix}").write_bytes(document)
    status, output = aria2c(tmp_path / f"t.{suffix}", tmp_path / "aria2")
    assert status == 0, output
    assert f"Download aborted. URI={dead_url}" in output  # aria2c tried the dead one too
    ours = digest("sha256", (pool / cmd.template_id).read_bytes())
    assert digest("sha256", (tmp_path / "aria2" / NAME).read_bytes()) == ours


@pytest.mark.parametrize(("write", "suffix", "dead_rank", "live_rank"), VERSIONS)
def test_a_wrong_metalink_hash_fails_here_and_in_aria2c(
    nginx: Nginx, pool: Path, tmp_path: Path, dead_url: str, write: Writer, suffix: str,
    dead_rank: int, live_rank: int,
) -> None:  # fmt: skip
    wrong = digest("sha256", DATA + b"!")
    live = f"{nginx.http_url}/{NAME}"
    document = write(
        NAME, len(DATA), {"SHA-256": wrong}, [(dead_url, dead_rank), (live, live_rank)]
    )
    cmd = command(serve_metalink(nginx, suffix, document), SourceProtocol.METALINK)

    error = failed(pool, cmd)

    assert error.code == DownloadFailure.CHECKSUM_MISMATCH
    assert wrong in error.message and digest("sha256", DATA) in error.message
    (tmp_path / f"t.{suffix}").write_bytes(document)
    status, output = aria2c(tmp_path / f"t.{suffix}", tmp_path / "aria2")
    assert status == 32, output
    assert "Checksum error detected" in output


GARBAGE_PIECES = ("SHA-256", MiB, ["deadbeef" * 8] * (len(DATA) // MiB + 1))


@pytest.mark.parametrize(("write", "suffix", "dead_rank", "live_rank"), VERSIONS)
def test_without_a_template_checksum_the_strongest_whole_file_hash_decides(
    nginx: Nginx, pool: Path, write: Writer, suffix: str, dead_rank: int, live_rank: int
) -> None:
    live = [(f"{nginx.http_url}/{NAME}", live_rank)]
    # A correct SHA-512 beside a wrong MD5: only the SHA-512 is checked. Garbage piece
    # hashes must not matter either.
    good = {"MD5": "0" * 32, "SHA-512": digest("sha512", DATA)}
    document = write(NAME, len(DATA), good, live, pieces=GARBAGE_PIECES)
    result = stored(
        pool, command(serve_metalink(nginx, suffix, document), SourceProtocol.METALINK), DATA
    )
    assert result.verified_digest == "{SHA-512}" + digest("sha512", DATA)
    os.unlink(result.path)

    # A correct MD5 beside a wrong SHA-256: SHA-256 is the stronger, so this must fail.
    wrong = digest("sha256", b"something else")
    bad = {"MD5": digest("md5", DATA), "SHA-256": wrong}
    document = write(NAME, len(DATA), bad, live, pieces=GARBAGE_PIECES)
    error = failed(pool, command(serve_metalink(nginx, suffix, document), SourceProtocol.METALINK))
    assert error.code == DownloadFailure.CHECKSUM_MISMATCH
    assert "{SHA-256}" + wrong in error.message


@pytest.mark.parametrize("delta", [1, -1], ids=["larger", "smaller"])
@pytest.mark.parametrize(("write", "suffix", "dead_rank", "live_rank"), VERSIONS)
def test_a_metalink_size_the_mirror_does_not_match_fails(
    nginx: Nginx, pool: Path, write: Writer, suffix: str, dead_rank: int, live_rank: int,
    delta: int,
) -> None:  # fmt: skip
    said = len(DATA) + delta
    live = [(f"{nginx.http_url}/{NAME}", live_rank)]
    document = write(NAME, said, {"SHA-256": digest("sha256", DATA)}, live)

    error = failed(pool, command(serve_metalink(nginx, suffix, document), SourceProtocol.METALINK))

    assert error.code == DownloadFailure.SIZE_MISMATCH, error.message
    assert str(said) in error.message and str(len(DATA)) in error.message


# 2. A mirror that drops half-way hands over to the next, which continues where it stopped.


@pytest.mark.parametrize(("write", "suffix", "dead_rank", "live_rank"), VERSIONS)
def test_a_mirror_dropping_mid_download_hands_over_at_the_same_byte(
    nginx: Nginx, pool: Path, write: Writer, suffix: str, dead_rank: int, live_rank: int
) -> None:
    dropped_at = 3 * MiB + 777
    with FaultyServer(DATA) as faulty:
        faulty.drop_after(dropped_at, times=1000)  # every request
        mirrors = [(f"http://127.0.0.1:{faulty.port}/{NAME}", dead_rank)]
        mirrors.append((f"{nginx.http_url}/{NAME}", live_rank))
        document = write(NAME, len(DATA), {"SHA-256": digest("sha256", DATA)}, mirrors)
        stored(
            pool, command(serve_metalink(nginx, suffix, document), SourceProtocol.METALINK), DATA
        )

    assert [(r.method, r.range) for r in faulty.requests] == [("GET", None)]
    entries = requests_for(nginx, f"/{NAME}")
    assert [e.status for e in entries] == [206]
    start = resumed_at(entries[0].range, dropped_at)
    assert entries[0].body_bytes_sent == len(DATA) - start


def test_an_unsafe_image_is_not_handed_to_the_next_mirror(nginx: Nginx, pool: Path) -> None:
    # The sink's verdict is about the file, not the mirror: failing over would only download
    # the rest of it from the next mirror and be refused at the end.
    for mirror in ("a", "b"):
        nginx.add_file(f"{mirror}/disk.qcow2", DATA)  # random bytes: not a qcow2
    mirrors = [(f"{nginx.http_url}/{m}/disk.qcow2", rank) for m, rank in (("a", 1), ("b", 2))]
    document = write_meta4("disk.qcow2", None, {}, mirrors)
    url = serve_metalink(nginx, "meta4", document)

    error = failed(pool, command(url, SourceProtocol.METALINK, format=TemplateFormat.QCOW2))

    assert error.code == DownloadFailure.UNSAFE_IMAGE, error.message
    requests_for(nginx, "/a/disk.qcow2")
    assert [e.uri for e in nginx.access_log_lines() if "qcow2" in e.uri] == ["/a/disk.qcow2"]


def test_the_metalink_document_itself_is_retried(nginx: Nginx, pool: Path) -> None:
    live = [(f"{nginx.http_url}/{NAME}", 1)]
    with FaultyServer(
        write_meta4(NAME, len(DATA), {"SHA-256": digest("sha256", DATA)}, live)
    ) as server:
        server.status(503)
        stored(pool, command(server.url, SourceProtocol.METALINK, max_attempts=2), DATA)

    assert len(server.requests) == 2


# 3. NFS through nfs-ganesha.


def test_a_qcow2_over_nfs_arrives_whole(ganesha: Ganesha, pool: Path) -> None:
    path = ganesha.export_dir / "images" / "t.qcow2"
    path.parent.mkdir(exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    data = path.read_bytes()
    checksum = "{SHA-256}" + digest("sha256", data)
    url = ganesha.url_for("images/t.qcow2")
    cmd = command(url, SourceProtocol.NFS, format=TemplateFormat.QCOW2, checksum=checksum)

    result = stored(pool, cmd, data)

    assert result.verified_digest == checksum


def test_a_missing_nfs_file_is_not_found(ganesha: Ganesha, pool: Path) -> None:
    error = failed(pool, command(ganesha.url_for("images/missing.raw"), SourceProtocol.NFS))
    assert error.code == DownloadFailure.NOT_FOUND, error.message


def test_a_gz_over_nfs_is_stored_decompressed_with_the_compressed_checksum(
    ganesha: Ganesha, pool: Path
) -> None:
    raw = os.urandom(3 * MiB) + bytes(5 * MiB)
    packed = gzip.compress(raw)
    path = ganesha.export_dir / "images" / "disk.raw.gz"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(packed)
    checksum = "{SHA-256}" + digest("sha256", packed)
    cmd = command(ganesha.url_for("images/disk.raw.gz"), SourceProtocol.NFS, checksum=checksum)

    result = stored(pool, cmd, raw, downloaded=packed)

    assert result.verified_digest == checksum


# 4. A template larger than the pool's free space is refused before its body is read.


def test_a_template_larger_than_the_free_space_is_refused_at_once(nginx: Nginx, pool: Path) -> None:
    huge = 8 * TiB
    path = nginx.root / "huge.raw"
    path.touch(mode=0o644)
    os.truncate(path, huge)  # sparse: takes no space
    free = shutil.disk_usage(pool).free
    assert huge > free, "the disk is too big for this test"

    started = time.monotonic()
    error = failed(pool, command(f"{nginx.http_url}/huge.raw", SourceProtocol.HTTP))
    elapsed = time.monotonic() - started

    assert error.code == DownloadFailure.NO_SPACE
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert str(pool) in error.message and f"({huge} bytes)" in error.message
    reported = re.search(r"has .*\((\d+) bytes\) free", error.message)
    assert reported is not None, error.message
    assert abs(int(reported[1]) - free) < 1024 * MiB
    entry = requests_for(nginx, "/huge.raw")[0]
    assert entry.body_bytes_sent < 64 * MiB


# 5. A checksum mismatch downloads again, checksum_attempts times in all, then fails.


def test_a_checksum_mismatch_downloads_again_then_fails(nginx: Nginx, pool: Path) -> None:
    wrong = digest("sha256", b"not the template")
    url, checksum = f"{nginx.http_url}/{NAME}", f"{{SHA-256}}{wrong}"
    cmd = command(url, SourceProtocol.HTTP, checksum=checksum, checksum_attempts=3)

    error = failed(pool, cmd)

    assert error.code == DownloadFailure.CHECKSUM_MISMATCH
    assert f"expected {{SHA-256}}{wrong}" in error.message
    assert f"got {{SHA-256}}{digest('sha256', DATA)}" in error.message
    assert cmd.template_id in error.message
    entries = requests_for(nginx, f"/{NAME}", count=3)
    assert [(e.status, e.range, e.body_bytes_sent) for e in entries] == [(200, "", len(DATA))] * 3


# 6-8. HTTP: a drop is resumed, a stall times out, a cancel leaves nothing.


def test_a_drop_half_way_is_resumed_with_range(pool: Path) -> None:
    half = len(DATA) // 2
    with FaultyServer(DATA) as server:
        server.drop_after(half)
        checksum = "{SHA-256}" + digest("sha256", DATA)
        stored(pool, command(server.url, SourceProtocol.HTTP, checksum=checksum), DATA)

    first, second = server.requests  # exactly two: one full GET, one Range GET
    assert (first.method, first.range, first.if_range) == ("GET", None, None)
    assert (second.method, second.if_range) == ("GET", server.etag)
    resumed_at(second.range, half)


def test_a_stall_past_the_socket_timeout_is_a_read_timeout(pool: Path) -> None:
    with FaultyServer(DATA) as server:
        server.stall_after_headers(10, times=10)
        cmd = command(server.url, SourceProtocol.HTTP, timeouts={"socket_ms": 1000}, max_attempts=2)
        started = time.monotonic()
        error = failed(pool, cmd)
        elapsed = time.monotonic() - started

    assert error.code == DownloadFailure.READ_TIMEOUT, error.message
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert len(server.requests) == 2


def test_a_cancel_stops_the_download_and_leaves_nothing(pool: Path) -> None:
    size = 16 * MiB
    with Nginx(slow_rate="2m") as nginx:  # 8 s for the whole file
        nginx.add_file("big.raw", os.urandom(size))
        calls: list[tuple[int, int | None]] = []
        cmd = command(f"{nginx.http_url}/slow/big.raw", SourceProtocol.HTTP)
        started = time.monotonic()
        error = failed(
            pool, cmd, lambda done, total: calls.append((done, total)), lambda: len(calls) > 1
        )
        elapsed = time.monotonic() - started
        entry = requests_for(nginx, "/slow/big.raw")[0]

    assert error.code == DownloadFailure.CANCELLED, error.message
    # Where it starts (nothing kept), then the first chunk, whose response said the size.
    assert len(calls) == 2 and calls[0] == (0, None) and calls[1][1] == size
    assert elapsed < 4, f"took {elapsed:.1f} s"
    assert entry.body_bytes_sent < size
