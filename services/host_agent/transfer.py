"""One download, start to finish: fetch with retries, verify, check the image, then commit."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import assert_never

import structlog

from directdl.contracts.checksum import ALGORITHMS, REPORTED, parse_checksum
from directdl.contracts.download import DownloadFailure, DownloadTemplate
from directdl.contracts.template import Compression, SourceProtocol
from directdl.destinations import DestinationPolicy
from host_agent.download.core import (
    DownloadRequest,
    Opened,
    Opener,
    Resume,
    Sink,
    TerminalError,
    Timeouts,
)
from host_agent.download.protocols import OPENERS, check_complete
from host_agent.download.retry import fetch_with_retries
from host_agent.download.sink import FileSink, partial_name
from host_agent.jobs import Transferred

log = structlog.get_logger(__name__)

Progress = Callable[[int, int | None], None]
NO_RESUME = Resume()


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
        self,
        cmd: DownloadTemplate,
        progress: Progress,
        cancelled: Callable[[], bool],
        resume: Resume = NO_RESUME,
    ) -> Transferred:
        """Download `cmd`'s template, continuing the job's partial file as `resume` allows."""
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
            first = attempt == 1
            if not first:
                # The same file name again, empty: no validator describes it any more. The
                # fetcher still stores the one it meets, and a stop still keeps the file.
                resume = replace(resume, validator=None)
                resume.remember(None)
            partial = first and _continues(cmd.protocol, resume, source)
            if not partial:
                # Nothing could continue it (NFS; an HTTP partial whose version is unknown):
                # gone unread, rather than read back only to be thrown away.
                (self.pool / partial_name(cmd.template_id, cmd.job_id)).unlink(missing_ok=True)
            with self._sink(cmd, source, verifying.name, resume, partial=partial) as sink:
                # The size learnt at registration: a source that won't say its size (no
                # Content-Length, an NFS listing refused) still meets the free-space check.
                sink.expect_size(cmd.expected_size)
                progress(sink.offset, cmd.expected_size)  # where it starts: the bytes kept
                fetch_with_retries(
                    # A fresh fetcher each time: after a mismatch it starts again from zero.
                    source.fetcher(resume),
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
                        image_digest=f"{{{REPORTED.name}}}{result.image_sha256}",
                    )
                mismatch = f"expected {expected} but got {{{verifying.name}}}{actual}"
                log.warning("transfer.checksum_mismatch", attempt=attempt, detail=mismatch)
            # Leaving the block discarded the bad bytes.
        raise TerminalError(
            DownloadFailure.CHECKSUM_MISMATCH,
            f"checksum mismatch for template {cmd.template_id} from {cmd.url}: {mismatch} "
            f"({cmd.checksum_attempts} downloads)",
        )

    @contextmanager
    def _sink(
        self,
        cmd: DownloadTemplate,
        source: Opened,
        algorithm: str,
        resume: Resume,
        *,
        partial: bool,
    ) -> Iterator[FileSink]:
        """The job's FileSink, continuing its partial file when `partial`. Whatever fails
        while `resume.stopping()` keeps the file for the next start; else it is discarded."""
        with FileSink(
            self.pool,
            cmd.template_id,
            cmd.job_id,
            cmd.format,
            checksum_algorithm=algorithm,
            compression=Compression.of(source.name),
            label=f"template {cmd.template_id}",
            resume=partial,
        ) as sink:
            if sink.resumed_from:
                log.info("transfer.resumed", kept=sink.resumed_from, path=str(sink.path))
            try:
                yield sink
            except BaseException:
                if resume.stopping():
                    sink.keep()
                raise


def _continues(protocol: SourceProtocol, resume: Resume, source: Opened) -> bool:
    """Whether the protocol's fetcher can continue a partial file, so that it is worth
    reading back: HTTP with the validator its bytes came with (If-Range), a metalink with a
    hash (its mirrors resume; the hash guards); NFS never (nfs-cat reads from byte 0)."""
    match protocol:
        case SourceProtocol.HTTP | SourceProtocol.HTTPS:
            return resume.validator is not None
        case SourceProtocol.METALINK:
            return source.checksum is not None
        case SourceProtocol.NFS:
            return False
        case unknown:
            assert_never(unknown)
