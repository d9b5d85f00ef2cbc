"""What every downloader shares: the request, the sink it writes to, and its two kinds of error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from directdl.contracts.template import Protocol as UrlProtocol
from directdl.destinations import DestinationPolicy


class ErrorCode(StrEnum):
    """Why a download failed; `template.download.failed` carries one of these."""

    CONNECT_TIMEOUT = "CONNECT_TIMEOUT"
    READ_TIMEOUT = "READ_TIMEOUT"
    CONNECTION = "CONNECTION"  # refused, reset, dropped half-way
    HTTP_SERVER = "HTTP_SERVER"  # 5xx
    HTTP_CLIENT = "HTTP_CLIENT"  # 4xx: terminal
    TLS = "TLS"  # certificate not trusted, wrong host name: terminal
    UNSAFE_REDIRECT = "UNSAFE_REDIRECT"  # terminal
    DESTINATION_DENIED = "DESTINATION_DENIED"  # the destination policy refuses it: terminal
    NOT_FOUND = "NOT_FOUND"  # terminal
    NO_SPACE = "NO_SPACE"  # terminal
    CHECKSUM_MISMATCH = "CHECKSUM_MISMATCH"  # terminal once the re-downloads are used up
    SIZE_MISMATCH = "SIZE_MISMATCH"
    UNSAFE_IMAGE = "UNSAFE_IMAGE"  # terminal
    BAD_METALINK = "BAD_METALINK"  # terminal
    NFS = "NFS"
    DECOMPRESSION = "DECOMPRESSION"  # terminal
    CANCELLED = "CANCELLED"
    INTERNAL = "INTERNAL"


class DownloadError(Exception):
    """A failure with a code and a message that names the bad value."""

    def __init__(self, code: ErrorCode, message: str, *, terminal: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.terminal = terminal


class TransientError(DownloadError):
    """Worth retrying: the retry loop backs off and resumes from the sink's offset."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(code, message, terminal=False)


class TerminalError(DownloadError):
    """Retrying cannot help: a 404, an untrusted certificate, an unsafe image, no space."""

    def __init__(self, code: ErrorCode, message: str) -> None:
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
    protocol: UrlProtocol
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
