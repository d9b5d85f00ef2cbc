"""What every downloader shares: the request, how a source opens, the sink, two kinds of error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from directdl.contracts.checksum import Checksum
from directdl.contracts.download import DownloadFailure
from directdl.destinations import DestinationPolicy


class DownloadError(Exception):
    """A failure with a code and a message that names the bad value. `terminal` is about this
    host only: retrying here cannot help; the code alone says whether another host may."""

    def __init__(self, code: DownloadFailure, message: str, *, terminal: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.terminal = terminal


class TransientError(DownloadError):
    """Worth retrying: the retry loop backs off and resumes from the sink's offset."""

    def __init__(self, code: DownloadFailure, message: str) -> None:
        super().__init__(code, message, terminal=False)


class TerminalError(DownloadError):
    """Retrying on this host cannot help: a 404, an untrusted certificate, an unsafe image."""

    def __init__(self, code: DownloadFailure, message: str) -> None:
        super().__init__(code, message, terminal=True)


@dataclass(frozen=True)
class Timeouts:
    """The three direct-download settings, in seconds."""

    connect: float = 5.0
    read: float = 5.0
    connection_request: float = 5.0


@dataclass(frozen=True)
class DownloadRequest:
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeouts: Timeouts = Timeouts()
    expected_size: int | None = None
    # For HTTPS: a CA bundle (PEM file) trusted in addition to the system's; None = system only.
    extra_ca_file: str | None = None
    # Where connections may go: every address, redirects and mirrors included, is checked.
    policy: DestinationPolicy = field(default_factory=DestinationPolicy)


class Sink(Protocol):
    """Where fetched bytes go. It hashes them as they pass, so there is no second read."""

    @property
    def offset(self) -> int:
        """Bytes received so far: where a resumed transfer must start."""
        ...

    def write(self, chunk: bytes) -> None: ...

    def restart(self) -> None:
        """Drop everything received; the next byte written is byte 0 of the file."""
        ...

    def expect_size(self, size: int | None) -> None:
        """The source told us the full size (Content-Length, metalink); may raise NO_SPACE."""
        ...


class Fetcher(Protocol):
    """One protocol. Writes the file into `sink`, resuming from `sink.offset` when it can
    (calling `sink.restart()` when it cannot), raising TransientError or TerminalError."""

    def fetch(
        self, request: DownloadRequest, sink: Sink, cancelled: Callable[[], bool]
    ) -> None: ...


def _forget(validator: str | None) -> None:
    return None


@dataclass(frozen=True)
class Resume:
    """What outlives the agent's process about a job's partial file, and how to keep it.

    `validator` is the source's ETag or Last-Modified that the partial's bytes came with, as
    `remember` last stored it (None: the partial, if any, cannot be trusted and starts again).
    `remember` is called whenever a fetcher learns a new one, before it writes that version's
    first byte. While `stopping()`, a failed download keeps its partial for the next start.
    """

    validator: str | None = None
    remember: Callable[[str | None], None] = _forget
    stopping: Callable[[], bool] = lambda: False


@dataclass(frozen=True)
class Opened:
    """What a protocol knows before the file's first byte."""

    name: str  # the file's name, whose last suffix says its compression
    # A fresh one for each whole download of the file; given the job's Resume for the first.
    fetcher: Callable[[Resume], Fetcher]
    checksum: Checksum | None = None  # the hash the source itself gives (a metalink's)


class Opener(Protocol):
    """One protocol's first step: may fetch a document (a metalink) before the file itself."""

    def __call__(
        self, request: DownloadRequest, cancelled: Callable[[], bool], max_attempts: int
    ) -> Opened: ...
