"""Stream decompression of a template in each of contracts' Compressions, bounded in memory."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator
from typing import Any, assert_never

from directdl.contracts.download import DownloadFailure
from directdl.contracts.template import Compression
from host_agent.download.core import TerminalError

CHUNK = 1 << 20


class Decompressor:
    """One stream, or several concatenated: multi-member gzip, pbzip2's bz2, concatenated xz.

    Output comes in pieces of at most CHUNK bytes, so a small input that expands a
    thousandfold never sits in memory whole.
    """

    def __init__(self, kind: Compression, label: str) -> None:
        self.kind = kind
        self.label = label
        self._engine: Any = None  # zlib's, bz2's and lzma's decompressor objects differ
        self._members = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self._feed(data)
        except (zlib.error, lzma.LZMAError, OSError, EOFError) as err:
            raise self._error(f"corrupt {self.kind} stream: {err}") from err

    def close(self) -> None:
        """Raise if the stream stopped in the middle of a member, or never started."""
        if self._engine is not None:
            raise self._error(f"{self.kind} stream ends early: the download is truncated")
        if self._members == 0:
            raise self._error(f"empty {self.kind} stream")

    def _error(self, message: str) -> TerminalError:
        return TerminalError(DownloadFailure.DECOMPRESSION, f"{self.label}: {message}")

    def _new(self) -> Any:
        # One engine per Compression; mypy's assert_never fails on one added without its engine.
        match self.kind:
            case Compression.GZ:
                return zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, largest window
            case Compression.BZ2:
                return bz2.BZ2Decompressor()
            case Compression.XZ:
                return lzma.LZMADecompressor()
            case unknown:
                assert_never(unknown)

    def _feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._engine is None:
                if self._members:
                    data = data.lstrip(b"\0")  # zero padding after a member is allowed
                    if not data:
                        return
                self._engine = self._new()
            engine = self._engine
            while True:
                out = engine.decompress(data, CHUNK)
                if out:
                    yield out
                if engine.eof:
                    data = engine.unused_data  # the start of the next member, if any
                    self._engine = None
                    self._members += 1
                    break
                if self.kind is Compression.GZ:
                    data = engine.unconsumed_tail
                    if not data and len(out) < CHUNK:
                        return
                else:
                    data = b""
                    if engine.needs_input:
                        return
