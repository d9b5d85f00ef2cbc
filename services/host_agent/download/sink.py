"""FileSink: a template's bytes into a temporary file in the pool, hashed, decompressed and
checked as they pass, then renamed into place; only a resumed partial is ever read back."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import math
import os
import re
import shutil
import stat
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from directdl.contracts.checksum import REPORTED, Algorithm, find_algorithm
from directdl.contracts.download import DownloadFailure
from directdl.contracts.template import Compression, TemplateFormat
from host_agent.download.core import TerminalError
from host_agent.download.decompress import Decompressor
from host_agent.download.hashing import HashBeside
from host_agent.download.image import ImageInspector

PART_SUFFIX = ".part"
WRITEBACK_WINDOW = 32 << 20
REREAD_CHUNK = 1 << 20
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FULL = (errno.ENOSPC, errno.EDQUOT)
_UNITS = ("KiB", "MiB", "GiB", "TiB")


@dataclass(frozen=True)
class Result:
    size_written: int  # bytes in the file: decompressed when the download was compressed
    received: int  # bytes downloaded
    digests: dict[str, str]  # hashlib name -> hex digest of the *downloaded* bytes
    path: Path  # the .part file; commit() moves it
    image_sha256: str  # hex SHA-256 of the file's bytes: digests["sha256"] unless decompressed


def partial_name(template_id: str, job_id: str) -> str:
    """The name of a job's temporary file in the pool: `.<template_id>.<job_id>.part`."""
    for value in (template_id, job_id):
        if not _ID.fullmatch(value):
            raise ValueError(f"{value!r} cannot be part of a file name")
    return f".{template_id}.{job_id}{PART_SUFFIX}"


def _algorithm(spelled: str) -> Algorithm:
    """'SHA-256', 'sha256' and 'Sha256' all name SHA-256; ValueError for what none names."""
    algorithm = find_algorithm(spelled)
    if algorithm is None:
        raise ValueError(f"unknown checksum algorithm {spelled!r}")
    return algorithm


def _disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    power = min(int(math.log(size, 1024)), len(_UNITS))
    return f"{size / 1024**power:.1f} {_UNITS[power - 1]} ({size} bytes)"


class FileSink:
    """core.Sink writing `.<template_id>.<job_id>.part` in the pool.

    The file is flock()ed while it lives, so `clean_partials` on another host sharing the pool
    leaves it alone. `offset` counts downloaded bytes, which for a compressed template is not
    the size of the file: a retry within one FileSink continues the same decompressor.

    With `resume`, a partial file left by an earlier process is continued: it is read back
    (never rewritten) through the hashes and the image check, and its bytes count as received,
    so the next write appends. That read happens here, before any connection is opened: done
    at the first write, it would leave the server's response unread for as long as it takes.
    """

    def __init__(
        self,
        pool: Path,
        template_id: str,
        job_id: str,
        fmt: TemplateFormat,
        *,
        checksum_algorithm: str | None = None,
        compression: Compression | None = None,
        label: str | None = None,
        free_bytes: Callable[[Path], int] = _disk_free,
        resume: bool = False,
    ) -> None:
        self.pool = pool
        self.path = pool / partial_name(template_id, job_id)
        self.fmt = fmt
        self.label = label or template_id
        # Compression("zip") is the ValueError naming a bad one, before any file exists.
        self.compression = None if compression is None else Compression(compression)
        algorithms = {REPORTED}
        if checksum_algorithm:
            algorithms.add(_algorithm(checksum_algorithm))
        self._hashes = HashBeside({each.hashlib_name: each.new for each in algorithms})
        self._free_bytes = free_bytes
        self._finished = False
        self._committed = False
        self._kept = False
        self._reset()
        fd = self._open_partial() if resume else None
        if fd is None:
            fd = self._create()
        self._file: BinaryIO | None = os.fdopen(fd, "wb")  # no O_TRUNC: a partial stays whole
        try:
            self._adopt(fd)
        except BaseException:
            self.discard()  # an unsafe head, an unreadable file: its bytes are of no use
            raise

    def _create(self) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        return self._locked(os.open(self.path, flags, 0o644))

    def _open_partial(self) -> int | None:
        """The earlier partial file, open and locked; None when there is none. A symlink
        (ELOOP from O_NOFOLLOW) or anything but a regular file is not ours: OSError."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise FileExistsError(errno.EEXIST, "not a regular file", str(self.path))
        return self._locked(fd)

    def _locked(self, fd: int) -> int:
        """`fd` once flock()ed; closed, and an error naming the holder, if someone has it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise TerminalError(
                DownloadFailure.INTERNAL,
                f"{self.path} is locked: another download of {self.label} is writing it "
                "(an agent still running, here or on another host sharing the pool)",
            ) from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _adopt(self, fd: int) -> None:
        """Take what the file already holds as received, hashed and checked."""
        size = os.fstat(fd).st_size
        if size == 0:
            return
        if self.compression is not None:
            # The bytes on disk are decompressed output, not the downloaded bytes that offset
            # and the checksum are about, and the decompressor's state at the cut cannot be
            # rebuilt from them (nor saved: zlib, bz2 and lzma objects do not pickle). The
            # download starts again from byte 0.
            self._open_file().truncate(0)
            return
        # A SIGKILLed writer leaves a prefix of the download: the kernel keeps what write()
        # was given. A power cut may leave an unsynced tail of zeros; only a checksum sees it.
        self._rehash(fd, size)
        self._open_file().seek(size)
        self._received = self._written = self._dropped = self.resumed_from = size

    def _reset(self) -> None:
        self._hashes.reset()
        self._decompressor = (
            Decompressor(self.compression, self.label) if self.compression else None
        )
        # Decompressed, the file's bytes are not the downloaded ones: they get their own hash.
        self._image_hash = hashlib.sha256() if self.compression else None
        self._inspector = ImageInspector(self.fmt, self.label)
        self._received = 0
        self._written = 0
        self._dropped = 0
        self.resumed_from = 0  # bytes of an earlier process's partial that were kept
        self._finished = False

    @property
    def offset(self) -> int:
        return self._received

    def write(self, chunk: bytes) -> None:
        self._open_file()
        self._received += len(chunk)
        self._hashes.update(chunk)  # hashed on their thread while this one writes the chunk
        if self._decompressor is None:
            self._emit(chunk)
        else:
            for piece in self._decompressor.feed(chunk):
                self._emit(piece)

    def restart(self) -> None:
        file = self._open_file()
        file.seek(0)
        file.truncate()
        self._reset()

    def expect_size(self, size: int | None) -> None:
        """Refuse early when the pool cannot hold the rest.

        Only the downloaded bytes still to come are known; for a compressed template that
        is a lower bound, and running out later is caught as NO_SPACE on write.
        """
        if size is None:
            return
        needed = max(size - self._received, 0)
        free = self._free_bytes(self.pool)
        if free < needed:
            bound = "at least " if self.compression else ""
            raise TerminalError(
                DownloadFailure.NO_SPACE,
                f"pool {self.pool} has {_human(free)} free, "
                f"the template {self.label} needs {bound}{_human(needed)}",
            )

    def finish(self) -> Result:
        """End of the download: no truncated stream, a safe image, and the bytes on disk."""
        file = self._open_file()
        if self._decompressor is not None:
            self._decompressor.close()
        self._inspector.verdict()
        try:
            file.flush()
            os.fsync(file.fileno())
        except OSError as err:
            raise self._full(err) from err
        self._finished = True
        digests = self._hashes.hexdigests()
        image = self._image_hash.hexdigest() if self._image_hash else digests[REPORTED.hashlib_name]
        return Result(self._written, self._received, digests, self.path, image)

    def commit(self, final_path: Path) -> None:
        """Atomically give the finished file its final name: it is whole or absent."""
        if not self._finished:
            raise RuntimeError("commit() before a successful finish()")
        os.replace(self.path, final_path)
        for directory in {final_path.parent, self.pool}:
            _fsync_directory(directory)
        self._committed = True
        self._close()

    def keep(self) -> None:
        """Close the file and release its lock, leaving it for a later FileSink(resume=True):
        the agent is stopping. discard() and leaving the block then leave it alone too."""
        self._close()
        self._kept = True

    def discard(self) -> None:
        """Remove the temporary file; harmless after commit(), keep() or a second call."""
        self._close()
        if not (self._committed or self._kept):
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> FileSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()

    def _rehash(self, fd: int, size: int) -> None:
        """Feed the first `size` bytes of the file to the hashes and the inspector, dropping
        them from the page cache as the write-back does: a resumed multi-GB partial must not
        push the host's cache out either."""
        done = dropped = 0
        while done < size:
            chunk = os.pread(fd, min(REREAD_CHUNK, size - done), done)
            if not chunk:
                raise RuntimeError(f"{self.path} shrank to {done} bytes while being resumed")
            self._inspector.feed(chunk)
            self._hashes.update(chunk)
            done += len(chunk)
            if done - dropped >= WRITEBACK_WINDOW:
                os.posix_fadvise(fd, dropped, done - dropped, os.POSIX_FADV_DONTNEED)
                dropped = done
        os.posix_fadvise(fd, dropped, done - dropped, os.POSIX_FADV_DONTNEED)

    def _emit(self, data: bytes) -> None:
        self._inspector.feed(data)  # first: an unsafe head stops the download before it lands
        if self._image_hash is not None:
            self._image_hash.update(data)
        file = self._open_file()
        try:
            file.write(data)
        except OSError as err:
            raise self._full(err) from err
        self._written += len(data)
        if self._written - self._dropped >= WRITEBACK_WINDOW:
            self._write_back(file)

    def _write_back(self, file: BinaryIO) -> None:
        """Start writing back what is written and drop it from the page cache. Refilling a
        cache that grew by gigabytes cost more than hashing (bench/download.py: 0.78 of
        `curl | sha256sum` without this, above 1.0 with it), a multi-GB template would push
        everything else out of the host's cache, and the final fsync is left little to do
        (py-spy: under 0.1% of a 1 GiB transfer in fsync)."""
        file.flush()
        os.posix_fadvise(file.fileno(), 0, self._written, os.POSIX_FADV_DONTNEED)
        self._dropped = self._written

    def _full(self, err: OSError) -> Exception:
        if err.errno in _FULL:
            return TerminalError(
                DownloadFailure.NO_SPACE,
                f"pool {self.pool} is full after {_human(self._written)} of {self.label}",
            )
        return err

    def _open_file(self) -> BinaryIO:
        if self._file is None:
            raise RuntimeError(f"{self.path} is already committed, kept or discarded")
        return self._file

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()  # also releases the flock
            self._file = None
        self._hashes.close()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_partials(pool: Path, keep: Collection[str] = frozenset()) -> list[Path]:
    """At start: remove `.*.part` files left by a crash, except those named in `keep` (the
    partials of unfinished jobs, see `partial_name`). A file still flock()ed belongs to a live
    download (perhaps on another host sharing the pool) and is kept."""
    removed = []
    for path in sorted(pool.glob(f".*{PART_SUFFIX}")):
        if path.name in keep:
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)  # NFS locks need write
        except (FileNotFoundError, IsADirectoryError):
            continue
        except OSError as err:
            if err.errno == errno.ELOOP:  # a symlink: not ours
                continue
            raise
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed
