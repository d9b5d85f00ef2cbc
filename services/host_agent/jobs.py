"""Runs recorded download jobs on worker threads and reports each outcome through the outbox."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from directdl.contracts import download as msg
from directdl.contracts.bounds import clip
from directdl.runtime import metrics
from host_agent.domain import JobState, StoredFile
from host_agent.download.core import DownloadError
from host_agent.uow import AgentUnitOfWork

if TYPE_CHECKING:
    from directdl.runtime.service import Service

log = structlog.get_logger(__name__)

POLL_SECONDS = 0.5

# The runner's transactions by name, as the dispatch table declares what each may publish.
RESUME = "job.resume"
CLAIM = "job.claim"
PROGRESS = "job.progress"
SUCCEEDED = "job.succeeded"
FAILED = "job.failed"


@dataclass(frozen=True)
class Transferred:
    path: str
    size: int
    digest: str  # {SHA-256}hex of the downloaded bytes
    verified_digest: str  # {ALGO}hex that was checked


class Transfer(Protocol):
    """Downloads one template into the pool under its final name, or raises DownloadError."""

    def __call__(
        self,
        cmd: msg.DownloadTemplate,
        progress: Callable[[int, int | None], None],
        cancelled: Callable[[], bool],
    ) -> Transferred: ...


class JobRunner:
    """A background task of the agent. One template is never downloaded twice at once: a
    second job for it waits, then finds the file stored and completes as cached."""

    def __init__(self, host_id: str, pool_id: str, workers: int, transfer: Transfer) -> None:
        self.host_id = host_id
        self.pool_id = pool_id
        self.workers = workers
        self.transfer = transfer
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._threads: list[threading.Thread] = []

    def wake(self) -> None:
        self._wake.set()

    def start(self, service: Service[AgentUnitOfWork]) -> None:
        with service.transaction(RESUME) as uow:
            resumed = uow.jobs.requeue_running()
        if resumed:
            log.info("jobs.resumed", jobs=resumed)
        for n in range(self.workers):
            thread = threading.Thread(
                target=self._loop, args=(service,), name=f"download-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        # A download in progress is abandoned; its job stays RUNNING and starts again next time.
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _loop(self, service: Service[AgentUnitOfWork]) -> None:
        structlog.contextvars.bind_contextvars(service=service.definition.name)
        while not self._stop.is_set():
            claimed = self._claim(service)
            if claimed is None:
                self._wake.wait(POLL_SECONDS)
                self._wake.clear()
                continue
            job, stored = claimed
            try:
                self._run(service, job, stored)
            finally:
                with self._lock:
                    self._busy.discard(job.template_id)
                self._wake.set()

    def _claim(
        self, service: Service[AgentUnitOfWork]
    ) -> tuple[msg.DownloadTemplate, StoredFile | None] | None:
        """The oldest queued job nobody is downloading the template of, now RUNNING, and
        what the pool already holds of that template."""
        with self._lock, service.transaction(CLAIM) as uow:
            row = uow.jobs.next_runnable(self._busy)
            if row is None:
                return None
            uow.jobs.set_state(row.job_id, JobState.RUNNING)
            self._busy.add(row.template_id)
            return msg.DownloadTemplate.model_validate(row.command), uow.pool.get(row.template_id)

    def _run(
        self,
        service: Service[AgentUnitOfWork],
        job: msg.DownloadTemplate,
        stored: StoredFile | None,
    ) -> None:
        structlog.contextvars.bind_contextvars(job_id=job.job_id, template_id=job.template_id)
        started = time.monotonic()
        report = dict(
            job_id=job.job_id,
            deploy_id=job.deploy_id,
            template_id=job.template_id,
            host_id=self.host_id,
            pool_id=self.pool_id,
        )
        if stored is not None and stored.satisfies(job.checksum) and stored.is_intact():
            self._succeed(service, job, report, stored, cached=True, started=started)
            return
        try:
            done = self.transfer(job, self._progress(service, report), self._stop.is_set)
        except DownloadError as err:
            self._fail(service, job, report, err.code, err.message)
            return
        except Exception as err:
            log.exception("job.crashed")
            # The text of an unexpected error (paths, SQL) is for the log; the failure event
            # ends up in the deploy's reply.
            why = f"the download failed unexpectedly ({type(err).__name__}); see the agent's log"
            self._fail(service, job, report, msg.DownloadFailure.INTERNAL, why)
            return
        stored = StoredFile(
            job.template_id, self.pool_id, done.path, done.size, done.digest, done.verified_digest
        )
        self._succeed(service, job, report, stored, cached=False, started=started)

    def _succeed(
        self,
        service: Service[AgentUnitOfWork],
        job: msg.DownloadTemplate,
        report: dict[str, str],
        stored: StoredFile,
        *,
        cached: bool,
        started: float,
    ) -> None:
        duration = round(time.monotonic() - started, 3)
        with service.transaction(SUCCEEDED) as uow:
            uow.pool.put(stored)
            uow.jobs.set_state(job.job_id, JobState.SUCCEEDED)
            uow.emit(
                msg.DownloadCompleted(
                    **report,
                    path=stored.path,
                    size=stored.size,
                    digest=stored.verified_digest,
                    cached=cached,
                    duration_s=duration,
                )
            )
        log.info("job.succeeded", cached=cached, size=stored.size, duration_s=duration)
        outcome = "cached" if cached else "succeeded"
        metrics.download_seconds.labels(self.host_id, outcome).observe(duration)

    def _fail(
        self,
        service: Service[AgentUnitOfWork],
        job: msg.DownloadTemplate,
        report: dict[str, str],
        code: msg.DownloadFailure,
        message: str,
    ) -> None:
        if self._stop.is_set() and code is msg.DownloadFailure.CANCELLED:
            return  # stopping: the job stays RUNNING and is resumed at the next start
        with service.transaction(FAILED) as uow:
            uow.jobs.set_state(job.job_id, JobState.FAILED, code, message)
            uow.emit(msg.DownloadFailed(**report, code=code, message=clip(message)))
        log.warning("job.failed", code=code, error=message)
        metrics.download_seconds.labels(self.host_id, str(code)).observe(0)

    def _progress(
        self, service: Service[AgentUnitOfWork], report: dict[str, str]
    ) -> Callable[[int, int | None], None]:
        """At most one progress event a second, each through the outbox."""
        last = {"at": 0.0, "bytes": 0}
        started = time.monotonic()

        counted = metrics.bytes_downloaded.labels(self.host_id)

        def progress(done: int, total: int | None) -> None:
            # `done` restarts from 0 when a download does; count only what is new.
            counted.inc(max(0, done - last["bytes"]))
            last["bytes"] = done
            now = time.monotonic()
            if now - last["at"] < 1.0:
                return
            rate = done / max(now - started, 1e-6)
            last["at"] = now
            with service.transaction(PROGRESS) as uow:
                uow.emit(
                    msg.DownloadProgress(**report, bytes_done=done, total=total, rate_bps=rate)
                )

        return progress
