"""One download, start to finish: fetch with retries, verify, check the image, then commit."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from directdl.contracts.checksum import ALGORITHMS, REPORTED, parse_checksum
from directdl.contracts.download import DownloadFailure, DownloadTemplate
from directdl.contracts.template import Compression, SourceProtocol
from directdl.destinations import DestinationPolicy
from host_agent.download.core import DownloadRequest, Opener, Sink, TerminalError, Timeouts
from host_agent.download.protocols import OPENERS, check_complete
from host_agent.download.retry import fetch_with_retries
from host_agent.download.sink import FileSink
from host_agent.jobs import Transferred

log = structlog.get_logger(__name__)

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
    """The agent's `Transfer`: downloads into one pool directory, each protocol by its opener."""

    def __init__(
        self,
        pool: Path,
        extra_ca_file: Callable[[], str | None] = lambda: None,
        *,
        openers: Mapping[SourceProtocol, Opener] = OPENERS,
    ) -> None:
        check_complete(openers)
        self.pool = pool
        self.extra_ca_file = extra_ca_file
        self.openers = openers

    def __call__(
        self, cmd: DownloadTemplate, progress: Progress, cancelled: Callable[[], bool]
    ) -> Transferred:
        request = DownloadRequest(
            url=cmd.url,
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
        source = self.openers[cmd.protocol](request, cancelled, cmd.max_attempts)
        expected = parse_checksum(cmd.checksum) if cmd.checksum else source.checksum
        verifying = ALGORITHMS[expected.algorithm] if expected else REPORTED
        mismatch = ""
        for attempt in range(1, cmd.checksum_attempts + 1):
            with FileSink(
                self.pool,
                cmd.template_id,
                cmd.job_id,
                cmd.format,
                checksum_algorithm=verifying.name,
                compression=Compression.of(source.name),
                label=f"template {cmd.template_id}",
            ) as sink:
                # The size learnt at registration: a source that won't say its size (no
                # Content-Length, an NFS listing refused) still meets the free-space check.
                sink.expect_size(cmd.expected_size)
                fetch_with_retries(
                    # A fresh fetcher each time: after a mismatch it starts again from zero.
                    source.fetcher(),
                    request,
                    ProgressSink(sink, progress),
                    max_attempts=cmd.max_attempts,
                    cancelled=cancelled,
                )
                result = sink.finish()
                actual = result.digests[verifying.hashlib_name]
                if expected is None or actual == expected.hexdigest:
                    final = self.pool / cmd.template_id
                    sink.commit(final)
                    return Transferred(
                        path=str(final),
                        size=result.size_written,
                        digest=f"{{{REPORTED.name}}}{result.digests[REPORTED.hashlib_name]}",
                        verified_digest=f"{{{verifying.name}}}{actual}",
                    )
                mismatch = f"expected {expected} but got {{{verifying.name}}}{actual}"
                log.warning("transfer.checksum_mismatch", attempt=attempt, detail=mismatch)
            # Leaving the block discarded the bad bytes.
        raise TerminalError(
            DownloadFailure.CHECKSUM_MISMATCH,
            f"checksum mismatch for template {cmd.template_id} from {cmd.url}: {mismatch} "
            f"({cmd.checksum_attempts} downloads)",
        )
