"""FileSink: hashes, restarts, decompression, free space, atomic commit, resume and cleanup."""

from __future__ import annotations

import bz2
import errno
import fcntl
import gzip
import hashlib
import lzma
import os
import random
import struct
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from directdl.contracts.download import DownloadFailure
from directdl.contracts.template import Compression, TemplateFormat
from host_agent.download import sink as sink_module
from host_agent.download.core import TerminalError
from host_agent.download.image import HEAD_BYTES
from host_agent.download.sink import FileSink, Result, clean_partials, partial_name

pytestmark = pytest.mark.unit

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
}


def test_every_compression_of_the_contract_is_tested() -> None:
    assert set(COMPRESS) == set(Compression)


def test_an_unknown_compression_is_refused_before_any_file_exists(pool: Path) -> None:
    with pytest.raises(ValueError, match="zst"):
        FileSink(pool, "tpl", "job", TemplateFormat.RAW, compression="zst")  # type: ignore[arg-type]
    assert list(pool.iterdir()) == []


@pytest.fixture(scope="module")
def data() -> bytes:
    """Incompressible and compressible stretches, larger than one 1 MiB chunk."""
    rng = random.Random(7)
    return rng.randbytes(1_500_000) + b"\0" * 2_000_000 + rng.randbytes(700_001)


@pytest.fixture(scope="module")
def compressed(data: bytes) -> dict[str, bytes]:
    """Each compression of `data`, made once: xz takes most of a second."""
    return {kind: compress(data) for kind, compress in COMPRESS.items()}


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    path = tmp_path / "pool"
    path.mkdir()
    return path


@pytest.fixture
def make_sink(pool: Path) -> Iterator[Callable[..., FileSink]]:
    sinks: list[FileSink] = []

    def make(**kwargs: object) -> FileSink:
        kwargs.setdefault("fmt", TemplateFormat.RAW)
        job = kwargs.pop("job_id", f"job{len(sinks)}")
        sink = FileSink(pool, "tpl", str(job), **kwargs)  # type: ignore[arg-type]
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.discard()


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def feed(sink: FileSink, data: bytes, size: int = 1 << 20) -> Result:
    for piece in pieces(data, size):
        sink.write(piece)
    return sink.finish()


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512", "SHA-512", "Sha1"])
def test_digests_match_hashlib_over_the_whole_file(
    make_sink: Callable[..., FileSink], data: bytes, algorithm: str
) -> None:
    sink = make_sink(checksum_algorithm=algorithm)
    result = feed(sink, data, size=65_537)
    name = algorithm.lower().replace("-", "")
    assert result.digests[name] == hashlib.new(name, data).hexdigest()
    assert result.digests["sha256"] == hashlib.sha256(data).hexdigest()
    assert set(result.digests) == {name, "sha256"}
    assert result.size_written == result.received == len(data) == sink.offset
    assert result.path.read_bytes() == data


def test_unknown_algorithm_is_refused_before_any_file_exists(
    make_sink: Callable[..., FileSink], pool: Path
) -> None:
    with pytest.raises(ValueError, match="whirlpool9"):
        make_sink(checksum_algorithm="whirlpool9")
    assert list(pool.iterdir()) == []


def test_restart_midway_gives_the_results_of_a_clean_download(
    make_sink: Callable[..., FileSink], data: bytes
) -> None:
    sink = make_sink(checksum_algorithm="md5")
    for piece in pieces(b"garbage from a server that ignored Range" * 50_000, 1 << 20):
        sink.write(piece)
    sink.restart()
    assert sink.offset == 0
    result = feed(sink, data)
    assert result.path.read_bytes() == data
    assert result.digests["md5"] == hashlib.md5(data).hexdigest()
    assert result.received == len(data)


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
def test_restart_midway_through_a_compressed_stream(
    make_sink: Callable[..., FileSink], data: bytes, compressed: dict[str, bytes], kind: str
) -> None:
    packed = compressed[kind]
    sink = make_sink(compression=kind, checksum_algorithm="sha1")
    sink.write(packed[: len(packed) // 2])
    sink.restart()
    result = feed(sink, packed)
    assert result.path.read_bytes() == data
    assert result.digests["sha1"] == hashlib.sha1(packed).hexdigest()


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
def test_decompresses_while_the_checksum_stays_that_of_the_download(
    make_sink: Callable[..., FileSink], data: bytes, compressed: dict[str, bytes], kind: str
) -> None:
    packed = compressed[kind]
    sink = make_sink(compression=kind, checksum_algorithm="sha512")
    result = feed(sink, packed, size=100_003)
    assert result.path.read_bytes() == data
    assert result.size_written == len(data)
    assert result.received == len(packed) == sink.offset
    assert result.digests["sha512"] == hashlib.sha512(packed).hexdigest()
    assert result.digests["sha256"] == hashlib.sha256(packed).hexdigest()


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
@pytest.mark.parametrize("padding", [b"", b"\0" * 1024])
def test_concatenated_members_decompress_to_the_concatenation(
    make_sink: Callable[..., FileSink], data: bytes, kind: str, padding: bytes
) -> None:
    """`cat a.gz b.gz`, pbzip2 and `xz` concatenations; GNU gzip's zero padding after a member."""
    first, second, third = data[:1000], data[1000:2_000_000], data[2_000_000:]
    packed = COMPRESS[kind](first) + COMPRESS[kind](second) + padding + COMPRESS[kind](third)
    result = feed(make_sink(compression=kind), packed + padding, size=4096)
    assert result.path.read_bytes() == data


def test_a_thousandfold_expansion_is_written_in_bounded_pieces(
    make_sink: Callable[..., FileSink],
) -> None:
    packed = gzip.compress(b"\0" * (48 << 20))
    assert len(packed) < 100_000
    sink = make_sink(compression="gz")
    tracemalloc.start()
    try:
        sink.write(packed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    assert sink.finish().size_written == 48 << 20


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_compressed_input_is_a_decompression_error(
    make_sink: Callable[..., FileSink], compressed: dict[str, bytes], kind: str, keep: float
) -> None:
    packed = compressed[kind]
    sink = make_sink(compression=kind, label="centos-9")
    for piece in pieces(packed[: int(len(packed) * keep)], 1 << 20):
        sink.write(piece)
    with pytest.raises(TerminalError) as caught:
        sink.finish()
    assert caught.value.code is DownloadFailure.DECOMPRESSION
    assert "centos-9" in caught.value.message and "truncated" in caught.value.message


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
def test_corrupt_or_empty_compressed_input_is_a_decompression_error(
    make_sink: Callable[..., FileSink], kind: str
) -> None:
    with pytest.raises(TerminalError) as corrupt:
        make_sink(compression=kind).write(b"this was never compressed" * 100)
    assert corrupt.value.code is DownloadFailure.DECOMPRESSION
    with pytest.raises(TerminalError) as empty:
        make_sink(compression=kind).finish()
    assert empty.value.code is DownloadFailure.DECOMPRESSION


def test_not_enough_free_space_is_refused_before_the_download(
    make_sink: Callable[..., FileSink], pool: Path
) -> None:
    sink = make_sink(free_bytes=lambda path: 4096, label="centos-9")
    with pytest.raises(TerminalError) as caught:
        sink.expect_size(3 << 30)
    assert caught.value.code is DownloadFailure.NO_SPACE
    assert caught.value.message == (
        f"pool {pool} has 4.0 KiB (4096 bytes) free, "
        "the template centos-9 needs 3.0 GiB (3221225472 bytes)"
    )
    sink.expect_size(None)
    sink.expect_size(4096)


def test_free_space_is_compared_with_the_bytes_still_to_come(
    make_sink: Callable[..., FileSink],
) -> None:
    sink = make_sink(free_bytes=lambda path: 1000, compression="gz")
    sink.write(b"\x1f\x8b")  # the download resumed after 2 bytes
    sink.expect_size(1002)
    with pytest.raises(TerminalError, match="needs at least 1001 bytes") as caught:
        sink.expect_size(1003)
    assert caught.value.code is DownloadFailure.NO_SPACE


def test_a_full_disk_while_writing_is_no_space(
    make_sink: Callable[..., FileSink], monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make_sink()

    def full(data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sink._file, "write", full)
    with pytest.raises(TerminalError) as caught:
        sink.write(b"x")
    assert caught.value.code is DownloadFailure.NO_SPACE


def test_the_final_name_appears_only_at_commit_and_whole(
    make_sink: Callable[..., FileSink], pool: Path, data: bytes
) -> None:
    final = pool / "0b9c-template.raw"
    sink = make_sink(job_id="j1")
    part = pool / ".tpl.j1.part"
    for piece in pieces(data, 1 << 20):
        sink.write(piece)
        assert sorted(pool.iterdir()) == [part]
    with pytest.raises(RuntimeError, match="finish"):
        sink.commit(final)
    result = sink.finish()
    assert result.path == part
    assert sorted(pool.iterdir()) == [part]
    sink.commit(final)
    assert sorted(pool.iterdir()) == [final]
    assert final.read_bytes() == data
    sink.discard()
    assert final.exists()


def test_commit_replaces_an_older_copy_atomically(
    make_sink: Callable[..., FileSink], pool: Path
) -> None:
    final = pool / "template.raw"
    final.write_bytes(b"old")
    sink = make_sink()
    feed(sink, b"new")
    sink.commit(final)
    assert final.read_bytes() == b"new"


def test_the_part_file_is_exclusive_and_named_safely(
    make_sink: Callable[..., FileSink], pool: Path
) -> None:
    make_sink(job_id="same")
    with pytest.raises(FileExistsError):
        make_sink(job_id="same")
    with pytest.raises(ValueError, match="file name"):
        make_sink(job_id="../../etc/x")


def test_discard_and_leaving_the_block_remove_the_part(
    make_sink: Callable[..., FileSink], pool: Path
) -> None:
    sink = make_sink()
    sink.write(b"partial")
    sink.discard()
    sink.discard()
    assert list(pool.iterdir()) == []
    with pytest.raises(KeyError), FileSink(pool, "tpl", "j9", TemplateFormat.RAW) as inner:
        inner.write(b"partial")
        raise KeyError("the download failed")
    assert list(pool.iterdir()) == []


def test_clean_partials_removes_leftovers_but_not_a_live_download(
    make_sink: Callable[..., FileSink], pool: Path
) -> None:
    stale = [pool / ".tpl.crashed.part", pool / ".other.j2.part"]
    for path in stale:
        path.write_bytes(b"half a template")
    kept = [pool / "template.qcow2", pool / "someone-else.part", pool / ".tpl.j.partial"]
    for path in kept:
        path.write_bytes(b"keep me")
    (pool / ".dir.part").mkdir()
    live = make_sink(job_id="live")
    live.write(b"still coming")
    assert clean_partials(pool) == sorted(stale)
    assert all(path.exists() for path in kept)
    assert live.path.exists() and (pool / ".dir.part").is_dir()
    assert clean_partials(pool) == []


def test_clean_partials_leaves_the_partials_it_is_told_to_keep(pool: Path) -> None:
    unfinished, stale = pool / partial_name("tpl", "running"), pool / partial_name("tpl", "old")
    for path in (unfinished, stale):
        path.write_bytes(b"half a template")
    assert clean_partials(pool, keep={unfinished.name, "not-there.part"}) == [stale]
    assert unfinished.read_bytes() == b"half a template" and not stale.exists()


def test_the_partial_name_is_the_sinks_and_refuses_unsafe_ids(
    make_sink: Callable[..., FileSink], pool: Path
) -> None:
    assert partial_name("tpl", "j-1") == ".tpl.j-1.part"
    assert make_sink(job_id="j-1").path == pool / partial_name("tpl", "j-1")
    for bad in ("../x", "", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="file name"):
            partial_name("tpl", bad)


# Resuming a partial file left by an earlier process.


RESUMED = "resumed"  # the job whose partial an earlier process left


def leave_partial(pool: Path, content: bytes) -> Path:
    path = pool / partial_name("tpl", RESUMED)
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("cut", [1, HEAD_BYTES - 1, HEAD_BYTES + 1, 1 << 20, 2_500_001])
def test_a_resumed_partial_gives_the_digests_of_an_uninterrupted_download(
    make_sink: Callable[..., FileSink], pool: Path, data: bytes, cut: int
) -> None:
    whole = feed(make_sink(job_id="whole", checksum_algorithm="md5"), data)
    part = leave_partial(pool, data[:cut])
    sink = make_sink(checksum_algorithm="md5", job_id=RESUMED, resume=True)
    assert sink.path == part
    assert sink.offset == sink.resumed_from == cut
    result = feed(sink, data[cut:], size=333_333)
    assert result.digests == whole.digests
    assert result.digests["md5"] == hashlib.md5(data).hexdigest()
    assert result.image_sha256 == whole.image_sha256 == hashlib.sha256(data).hexdigest()
    assert (result.received, result.size_written) == (len(data), len(data))
    assert part.read_bytes() == data  # appended after the partial, not written over it


def test_resume_without_a_partial_creates_the_file(
    make_sink: Callable[..., FileSink], pool: Path, data: bytes
) -> None:
    sink = make_sink(job_id=RESUMED, resume=True)
    assert (sink.offset, sink.resumed_from) == (0, 0)
    assert feed(sink, data).digests["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_resumed_partial_is_read_back_in_chunks_and_dropped_from_the_cache(
    make_sink: Callable[..., FileSink], pool: Path, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    leave_partial(pool, data)
    monkeypatch.setattr(sink_module, "WRITEBACK_WINDOW", 1 << 20)
    reads: list[int] = []
    dropped: list[tuple[int, int]] = []
    real_pread, real_fadvise = os.pread, os.posix_fadvise

    def pread(fd: int, size: int, at: int) -> bytes:
        reads.append(size)
        return real_pread(fd, size, at)

    def fadvise(fd: int, start: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_DONTNEED
        dropped.append((start, length))
        real_fadvise(fd, start, length, advice)

    monkeypatch.setattr(os, "pread", pread)
    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    sink = make_sink(job_id=RESUMED, resume=True)
    assert sink.offset == len(data)
    assert max(reads) == 1 << 20 and sum(reads) == len(data)
    assert len(dropped) >= 4  # 4.2 MB in 1 MiB windows
    covered = 0
    for start, length in dropped:
        assert start == covered
        covered += length
    assert covered == len(data)


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
def test_a_compressed_partial_is_truncated_and_downloaded_again(
    make_sink: Callable[..., FileSink], pool: Path, data: bytes, compressed: dict[str, bytes],
    kind: str,
) -> None:  # fmt: skip
    part = leave_partial(pool, data[:1_000_000])  # decompressed bytes of an earlier process
    sink = make_sink(compression=kind, job_id=RESUMED, resume=True)
    assert (sink.offset, sink.resumed_from, part.stat().st_size) == (0, 0, 0)
    result = feed(sink, compressed[kind])
    assert part.read_bytes() == data
    assert result.digests["sha256"] == hashlib.sha256(compressed[kind]).hexdigest()


def test_restart_after_resuming_drops_the_partial_too(
    make_sink: Callable[..., FileSink], pool: Path, data: bytes
) -> None:
    leave_partial(pool, b"an older version of the file" * 1000)
    sink = make_sink(job_id=RESUMED, resume=True)
    sink.restart()
    assert (sink.offset, sink.resumed_from) == (0, 0)
    result = feed(sink, data)
    assert result.path.read_bytes() == data
    assert result.digests["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_partial_with_an_unsafe_head_is_refused_and_removed(
    make_sink: Callable[..., FileSink], pool: Path
) -> None:
    part = leave_partial(pool, qcow2_head(b"/etc/shadow"))
    with pytest.raises(TerminalError) as caught:
        make_sink(fmt=TemplateFormat.QCOW2, label="evil-template", job_id=RESUMED, resume=True)
    assert caught.value.code is DownloadFailure.UNSAFE_IMAGE
    assert "/etc/shadow" in caught.value.message
    assert not part.exists()


def test_a_partial_locked_by_another_download_is_left_alone(
    make_sink: Callable[..., FileSink], pool: Path
) -> None:
    part = leave_partial(pool, b"someone else's bytes")
    with open(part, "rb+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(TerminalError) as caught:
            make_sink(label="centos-9", job_id=RESUMED, resume=True)
    assert caught.value.code is DownloadFailure.INTERNAL
    assert str(part) in caught.value.message and "locked" in caught.value.message
    assert "centos-9" in caught.value.message
    assert part.read_bytes() == b"someone else's bytes"


def test_a_symlink_in_place_of_the_partial_is_not_followed(
    make_sink: Callable[..., FileSink], pool: Path, tmp_path: Path
) -> None:
    target = tmp_path / "precious"
    target.write_bytes(b"not a template")
    (pool / partial_name("tpl", RESUMED)).symlink_to(target)
    with pytest.raises(OSError) as caught:
        make_sink(job_id=RESUMED, resume=True)
    assert caught.value.errno == errno.ELOOP
    assert target.read_bytes() == b"not a template"


def test_keep_leaves_the_partial_unlocked_for_the_next_start(
    make_sink: Callable[..., FileSink], pool: Path, data: bytes
) -> None:
    with make_sink(job_id=RESUMED) as sink:
        sink.write(data[:777_777])
        sink.keep()
        with pytest.raises(RuntimeError, match="discarded"):
            sink.write(b"more")
    assert sink.path.read_bytes() == data[:777_777]
    sink.discard()
    assert clean_partials(pool, keep={sink.path.name}) == []
    resumed = make_sink(job_id=RESUMED, resume=True)
    assert resumed.offset == 777_777
    assert feed(resumed, data[777_777:]).digests["sha256"] == hashlib.sha256(data).hexdigest()


def test_leaving_the_block_after_a_failure_still_discards_a_resumed_partial(
    make_sink: Callable[..., FileSink], pool: Path, data: bytes
) -> None:
    part = leave_partial(pool, data[:1000])
    with pytest.raises(KeyError), make_sink(job_id=RESUMED, resume=True) as sink:
        assert sink.offset == 1000
        raise KeyError("the download failed")
    assert not part.exists()


# The image's digest beside the download's.


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
def test_the_image_digest_of_a_compressed_download_is_that_of_the_file(
    make_sink: Callable[..., FileSink], data: bytes, compressed: dict[str, bytes], kind: str
) -> None:
    result = feed(make_sink(compression=kind), compressed[kind], size=100_003)
    assert result.image_sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert result.image_sha256 == hashlib.sha256(data).hexdigest()
    assert result.digests["sha256"] == hashlib.sha256(compressed[kind]).hexdigest()
    assert result.image_sha256 != result.digests["sha256"]


def test_the_image_digest_of_a_restarted_compressed_download_starts_again(
    make_sink: Callable[..., FileSink], data: bytes, compressed: dict[str, bytes]
) -> None:
    sink = make_sink(compression="gz")
    sink.write(gzip.compress(b"another file entirely"))
    sink.restart()
    assert feed(sink, compressed["gz"]).image_sha256 == hashlib.sha256(data).hexdigest()


def qcow2_head(backing: bytes) -> bytes:
    """A bare qcow2 v3 header naming a backing file, padded past the inspected head."""
    header = struct.pack(">4sIQI", b"QFI\xfb", 3, 512, len(backing)).ljust(104, b"\0")
    header = header[:100] + struct.pack(">I", 104)
    return (header.ljust(512, b"\0") + backing).ljust(HEAD_BYTES + 4096, b"\0")


def test_an_unsafe_qcow2_stops_the_download_after_its_head(
    make_sink: Callable[..., FileSink],
) -> None:
    sink = make_sink(fmt=TemplateFormat.QCOW2, label="evil-template")
    head = qcow2_head(b"/etc/shadow")
    with pytest.raises(TerminalError) as caught:
        for piece in pieces(head, 4096):
            sink.write(piece)
    assert caught.value.code is DownloadFailure.UNSAFE_IMAGE
    assert caught.value.message == "evil-template: qcow2 has a backing file '/etc/shadow'"
    assert sink.offset <= HEAD_BYTES


def test_a_qcow2_downloaded_as_raw_is_refused(make_sink: Callable[..., FileSink]) -> None:
    sink = make_sink(fmt=TemplateFormat.RAW)
    with pytest.raises(TerminalError, match="declares RAW but the file is qcow2") as caught:
        feed(sink, qcow2_head(b"base.qcow2"))
    assert caught.value.code is DownloadFailure.UNSAFE_IMAGE
