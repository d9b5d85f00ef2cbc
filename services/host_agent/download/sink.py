"""FileSink: a template's bytes into a temporary file in the pool, hashed, decompressed and
checked as they pass, then renamed into place; there is never a second read of the file."""

from __future__ import annotations

import errno
import fcntl
import math
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from directdl.contracts.checksum import REPORTED, Algorithm, find_algorithm
from directdl.contracts.download import DownloadFailure
from directdl.contracts.template import Compression, TemplateFormat
from host_agent.download.core import TerminalError
from host_agent.download.decompress import Decompressor
from host_agent.download.image import ImageInspector

PART_SUFFIX = ".part"
WRITEBACK_WINDOW = 32 << 20
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FULL = (errno.ENOSPC, errno.EDQUOT)
_UNITS = ("KiB", "MiB", "GiB", "TiB")


@dataclass(frozen=True)
class Result:
    size_written: int  # bytes in the file: decompressed when the download was compressed
    received: int  # bytes downloaded
    digests: dict[str, str]  # hashlib name -> hex digest of the *downloaded* bytes
    path: Path  # the .part file; commit() moves it


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

    The file is created with O_EXCL and flock()ed while it lives, so `clean_partials` on
    another host sharing the pool leaves it alone. `offset` counts downloaded bytes, which
    for a compressed template is not the size of the file: a resume continues the same
    decompressor, so it only works within one FileSink.
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
    ) -> None:
        for value in (template_id, job_id):
            if not _ID.fullmatch(value):
                raise ValueError(f"{value!r} cannot be part of a file name")
        self.pool = pool
        self.path = pool / f".{template_id}.{job_id}{PART_SUFFIX}"
        self.fmt = fmt
        self.label = label or template_id
        # Compression("zip") is the ValueError naming a bad one, before any file exists.
        self.compression = None if compression is None else Compression(compression)
        self._algorithms = {REPORTED}
        if checksum_algorithm:
            self._algorithms.add(_algorithm(checksum_algorithm))
        self._free_bytes = free_bytes
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(self.path, flags, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._finished = False
        self._committed = False
        self._reset()

    def _reset(self) -> None:
        self._hashes = {algorithm.hashlib_name: algorithm.new() for algorithm in self._algorithms}
        self._decompressor = (
            Decompressor(self.compression, self.label) if self.compression else None
        )
        self._inspector = ImageInspector(self.fmt, self.label)
        self._received = 0
        self._written = 0
        self._dropped = 0
        self._finished = False

    @property
    def offset(self) -> int:
        return self._received

    def write(self, chunk: bytes) -> None:
        self._open_file()
        self._received += len(chunk)
        for digest in self._hashes.values():
            digest.update(chunk)
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
        digests = {name: digest.hexdigest() for name, digest in self._hashes.items()}
        return Result(self._written, self._received, digests, self.path)

    def commit(self, final_path: Path) -> None:
        """Atomically give the finished file its final name: it is whole or absent."""
        if not self._finished:
            raise RuntimeError("commit() before a successful finish()")
        os.replace(self.path, final_path)
        for directory in {final_path.parent, self.pool}:
            _fsync_directory(directory)
        self._committed = True
        self._close()

    def discard(self) -> None:
        """Remove the temporary file; harmless after commit() or a second call."""
        self._close()
        if not self._committed:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> FileSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()

    def _emit(self, data: bytes) -> None:
        self._inspector.feed(data)  # first: an unsafe head stops the download before it lands
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
        cache that grew by gigabytes cost more than hashing (bench/download.py: 0.78 of the
        single-pass limit without this, above 1.0 with it), a multi-GB template would push
        everything else out of the host's cache, and the final fsync is left little to do."""
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
            raise RuntimeError(f"{self.path} is already committed or discarded")
        return self._file

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()  # also releases the flock
            self._file = None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_partials(pool: Path) -> list[Path]:
    """At start: remove `.*.part` files left by a crash. A file still flock()ed belongs to a
    live download (perhaps on another host sharing the pool) and is kept."""
    removed = []
    for path in sorted(pool.glob(f".*{PART_SUFFIX}")):
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
