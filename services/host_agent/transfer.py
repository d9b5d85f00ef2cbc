"""One download, start to finish: fetch with retries, verify, check the image, then commit."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from directdl.contracts.checksum import parse_checksum
from directdl.contracts.download import DownloadFailure, DownloadTemplate
from directdl.contracts.template import Protocol
from directdl.destinations import DestinationPolicy
from host_agent.download.core import (
    DownloadRequest,
    Fetcher,
    Sink,
    TerminalError,
    Timeouts,
)
from host_agent.download.decompress import COMPRESSIONS
from host_agent.download.http import HttpFetcher
from host_agent.download.mirrors import MirrorFetcher, fetch_metalink
from host_agent.download.nfs import NfsFetcher
from host_agent.download.retry import fetch_with_retries
from host_agent.download.sink import FileSink
from host_agent.jobs import Transferred

log = structlog.get_logger(__name__)

REPORTED = "SHA-256"

Progress = Callable[[int, int | None], None]


class ProgressSink:
    """Passes everything to the real sink, telling `progress` how far it has got."""

    def __init__(self, sink: Sink, progress: Progress) -> None:
        self.sink = sink
        self.progress = progress
        self.total: int | None = None

    @property
    def offset(self) -> int:
        return self.sink.offset

    def write(self, chunk: bytes) -> None:
        self.sink.write(chunk)
        self.progress(self.sink.offset, self.total)

    def restart(self) -> None:
        self.sink.restart()

    def expect_size(self, size: int | None) -> None:
        self.total = size
        self.sink.expect_size(size)


class PoolTransfer:
    """The agent's `Transfer`: downloads into one pool directory."""

    def __init__(self, pool: Path, extra_ca_file: Callable[[], str | None] = lambda: None) -> None:
        self.pool = pool
        self.extra_ca_file = extra_ca_file

    def __call__(
        self, cmd: DownloadTemplate, progress: Progress, cancelled: Callable[[], bool]
    ) -> Transferred:
        request = DownloadRequest(
            url=cmd.url,
            protocol=cmd.protocol,
            headers=cmd.headers,
            timeouts=Timeouts(
                connect=cmd.timeouts.connect_ms / 1000,
                read=cmd.timeouts.socket_ms / 1000,
                connection_request=cmd.timeouts.connection_request_ms / 1000,
            ),
            expected_size=cmd.expected_size,
            extra_ca_file=self.extra_ca_file(),
            policy=DestinationPolicy.parse(cmd.denied_networks, cmd.allowed_networks),
        )
        expected = parse_checksum(cmd.checksum) if cmd.checksum else None
        fetcher: Fetcher
        if cmd.protocol is Protocol.METALINK:
            metalink = fetch_metalink(request, cancelled, cmd.max_attempts)
            if expected is None and (strongest := metalink.strongest_hash()) is not None:
                expected = parse_checksum("{%s}%s" % strongest)  # noqa: UP031 - braces are literal
            fetcher, name = MirrorFetcher(metalink), metalink.name
        else:
            fetcher = NfsFetcher() if cmd.protocol is Protocol.NFS else HttpFetcher()
            name = posixpath.basename(urlsplit(cmd.url).path)
        algorithm = expected.algorithm if expected else REPORTED
        mismatch = ""
        for attempt in range(1, cmd.checksum_attempts + 1):
            with FileSink(
                self.pool,
                cmd.template_id,
                cmd.job_id,
                cmd.format,
                checksum_algorithm=algorithm,
                compression=_compression(name),
                label=f"template {cmd.template_id}",
            ) as sink:
                # The size learnt at registration: a source that won't say its size (no
                # Content-Length, an NFS listing refused) still meets the free-space check.
                sink.expect_size(cmd.expected_size)
                fetch_with_retries(
                    fetcher,
                    request,
                    ProgressSink(sink, progress),
                    max_attempts=cmd.max_attempts,
                    cancelled=cancelled,
                )
                result = sink.finish()
                actual = result.digests[expected.hashlib_name if expected else "sha256"]
                if expected is None or actual == expected.hexdigest:
                    final = self.pool / cmd.template_id
                    sink.commit(final)
                    return Transferred(
                        path=str(final),
                        size=result.size_written,
                        digest="{SHA-256}" + result.digests["sha256"],
                        verified_digest="{%s}%s" % (algorithm, actual),  # noqa: UP031
                    )
                mismatch = f"expected {expected} but got {{{algorithm}}}{actual}"
                log.warning("transfer.checksum_mismatch", attempt=attempt, detail=mismatch)
            # Leaving the block discarded the bad bytes; a fresh fetcher starts from zero.
            fetcher = _fresh(fetcher)
        raise TerminalError(
            DownloadFailure.CHECKSUM_MISMATCH,
            f"checksum mismatch for template {cmd.template_id} from {cmd.url}: {mismatch} "
            f"({cmd.checksum_attempts} downloads)",
        )


def _compression(name: str) -> str | None:
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return suffix if suffix in COMPRESSIONS else None


def _fresh(fetcher: Fetcher) -> Fetcher:
    if isinstance(fetcher, MirrorFetcher):
        return MirrorFetcher(fetcher.metalink)
    return type(fetcher)()
