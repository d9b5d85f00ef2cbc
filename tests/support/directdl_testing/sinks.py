"""An in-memory Sink for downloader tests: keeps the bytes, hashes them, counts restarts."""

from __future__ import annotations

import hashlib
import io


class MemorySink:
    """Implements host_agent's `Sink` protocol in memory.

    `initial` pre-fills it, as a partial file left by an earlier attempt would.
    """

    def __init__(self, initial: bytes = b"") -> None:
        self._buffer = io.BytesIO()
        self._hash = hashlib.sha256()
        self.restarts = 0
        self.expected_sizes: list[int | None] = []
        self.writes = 0
        if initial:
            self.write(initial)
            self.writes = 0

    @property
    def offset(self) -> int:
        return self._buffer.tell()

    def write(self, chunk: bytes) -> None:
        self._buffer.write(chunk)
        self._hash.update(chunk)
        self.writes += 1

    def restart(self) -> None:
        self._buffer = io.BytesIO()
        self._hash = hashlib.sha256()
        self.restarts += 1

    def expect_size(self, size: int | None) -> None:
        self.expected_sizes.append(size)

    @property
    def data(self) -> bytes:
        return self._buffer.getvalue()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
