"""Metalink downloads: fetch the metalink, then the file from its mirrors in order, failing over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import structlog

from directdl.contracts.checksum import Checksum
from directdl.contracts.download import DownloadFailure
from directdl.metalink import MAX_BYTES, Metalink, MetalinkError, parse_metalink
from host_agent.download.core import (
    DownloadError,
    DownloadRequest,
    Opened,
    Sink,
    TerminalError,
    TransientError,
)
from host_agent.download.http import HttpFetcher
from host_agent.download.retry import fetch_with_retries

log = structlog.get_logger(__name__)

# Verdicts on the file or the pool, not on the mirror (the sink raises them): the next mirror
# would only resume into the same sink and meet them again, after downloading the rest.
NOT_THE_MIRROR = frozenset(
    {
        DownloadFailure.CANCELLED,
        DownloadFailure.NO_SPACE,
        DownloadFailure.UNSAFE_IMAGE,
        DownloadFailure.DECOMPRESSION,
    }
)


class _Buffer:
    """A Sink in memory, for the metalink document; refuses anything implausibly large."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.data = bytearray()

    @property
    def offset(self) -> int:
        return len(self.data)

    def write(self, chunk: bytes) -> None:
        self.data += chunk
        self.expect_size(len(self.data))

    def restart(self) -> None:
        self.data.clear()

    def expect_size(self, size: int | None) -> None:
        if size is not None and size > MAX_BYTES:
            raise TerminalError(
                DownloadFailure.BAD_METALINK,
                f"metalink {self.url} is {size} bytes; more than {MAX_BYTES} is refused",
            )


def open_metalink(
    request: DownloadRequest, cancelled: Callable[[], bool], max_attempts: int = 1
) -> Opened:
    """The metalink protocol's Opener: the document names the file, its hash and mirrors."""
    metalink = fetch_metalink(request, cancelled, max_attempts)
    strongest = metalink.strongest_hash()
    return Opened(
        name=metalink.name,
        fetcher=lambda resume: MirrorFetcher(metalink, trust_partial=strongest is not None),
        checksum=Checksum(*strongest) if strongest else None,
    )


def fetch_metalink(
    request: DownloadRequest, cancelled: Callable[[], bool], max_attempts: int = 1
) -> Metalink:
    """Download and parse the metalink document itself (small, kept in memory); a transient
    failure is retried like the file's own download, up to `max_attempts` in all."""
    buffer = _Buffer(request.url)
    fetch_with_retries(
        HttpFetcher(), request, buffer, max_attempts=max_attempts, cancelled=cancelled
    )
    try:
        return parse_metalink(bytes(buffer.data), source=request.url)
    except MetalinkError as err:
        raise TerminalError(DownloadFailure.BAD_METALINK, str(err)) from err


class MirrorFetcher:
    """Tries the mirrors in the metalink's order. A mirror that fails, even half-way, hands over
    to the next, which continues from the bytes already received: the mirrors serve one file,
    and the whole-file hash checked afterwards catches any that does not.

    A partial file in the sink at the first call (left by an earlier process) is continued the
    same way when `trust_partial`, which the opener gives when the metalink has a hash: the
    job's Resume goes unused, since each mirror has validators of its own and the hash guards
    instead. Without one, nothing would catch bytes of an older version, perhaps days older,
    spliced onto the new: the partial is dropped.
    """

    def __init__(self, metalink: Metalink, *, trust_partial: bool = False) -> None:
        self.metalink = metalink
        self.trust_partial = trust_partial
        self._next = 0
        self._started = False

    def fetch(self, request: DownloadRequest, sink: Sink, cancelled: Callable[[], bool]) -> None:
        if not self._started and sink.offset > 0 and not self.trust_partial:
            log.info("metalink.partial_dropped", bytes=sink.offset, reason="no hash to check")
            sink.restart()
        self._started = True
        if self.metalink.size is not None:
            sink.expect_size(self.metalink.size)
        errors: list[DownloadError] = []
        mirrors = self.metalink.mirrors
        for _ in range(len(mirrors)):
            url = mirrors[self._next % len(mirrors)]
            mirror = replace(request, url=url)
            try:
                HttpFetcher(resume_unvalidated=True).fetch(mirror, sink, cancelled)
            except DownloadError as err:
                if err.code in NOT_THE_MIRROR:
                    raise
                log.warning("metalink.mirror_failed", mirror=url, code=err.code, error=err.message)
                errors.append(err)
                self._next += 1
                continue
            if self.metalink.size is not None and sink.offset != self.metalink.size:
                raise TerminalError(
                    DownloadFailure.SIZE_MISMATCH,
                    f"mirror {url} gave {sink.offset} bytes, not {self.metalink.size}",
                )
            return
        summary = "; ".join(f"{e.code}: {e.message}" for e in errors)
        if all(e.terminal for e in errors):
            raise TerminalError(errors[-1].code, f"every mirror failed: {summary}")
        raise TransientError(errors[-1].code, f"every mirror failed: {summary}")
