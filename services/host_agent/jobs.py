"""Runs recorded download jobs on worker threads and reports each outcome through the outbox."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog

from directdl.contracts import download as msg
from directdl.contracts.bounds import clip
from directdl.runtime import metrics
from host_agent import cache
from host_agent.domain import JobState, StoredFile
from host_agent.download.core import DownloadError, Resume
from host_agent.uow import AgentUnitOfWork

if TYPE_CHECKING:
    from directdl.runtime.service import Service

log = structlog.get_logger(__name__)

POLL_SECONDS = 0.5

# The runner's transactions by name, as the dispatch table declares what each may publish.
CLAIM = "job.claim"
VALIDATOR = "job.validator"
PROGRESS = "job.progress"
SUCCEEDED = "job.succeeded"
FAILED = "job.failed"


@dataclass(frozen=True)
class _Claimed:
    job: msg.DownloadTemplate
    stored: StoredFile | None
    validator: str | None  # of the partial file the job left, if any


@dataclass(frozen=True)
class Transferred:
    path: str
    size: int
    digest: str  # {SHA-256}hex of the downloaded bytes
    verified_digest: str  # {ALGO}hex that was checked
    image_digest: str  # {SHA-256}hex of the file on the pool: `digest` unless decompressed


class Transfer(Protocol):
    """Downloads one template into the pool under its final name, or raises DownloadError.
    `progress(done, total)` is called first with the offset it starts from, then as bytes
    arrive; `resume` says what survives of the job's partial file, and keeps it up to date."""

    def __call__(
        self,
        cmd: msg.DownloadTemplate,
        progress: Callable[[int, int | None], None],
        cancelled: Callable[[], bool],
        resume: Resume,
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
        # Running jobs asked to stop, each with whether its failure is to be reported.
        self._cancelled: dict[str, bool] = {}
        self._threads: list[threading.Thread] = []

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, job_id: str, *, report: bool) -> None:
        """Stop a running job at its next chunk; its partial file is discarded. `report`:
        publish its DownloadFailed(CANCELLED), for a deploy that still waits for it."""
        with self._lock:
            self._cancelled[job_id] = report

    def start(self, service: Service[AgentUnitOfWork]) -> None:
        # Jobs a crash left unfinished are HELD by `recovery.recover`, a start-up step,
        # until their deploy's owner says to resume them.
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
            try:
                self._run(service, claimed)
            finally:
                with self._lock:
                    self._busy.discard(claimed.job.template_id)
                    self._cancelled.pop(claimed.job.job_id, None)
                self._wake.set()

    def _claim(self, service: Service[AgentUnitOfWork]) -> _Claimed | None:
        """The oldest queued job nobody is downloading the template of, now RUNNING, with
        what the pool already holds of that template and the validator of its partial."""
        with self._lock, service.transaction(CLAIM) as uow:
            row = uow.jobs.next_runnable(self._busy)
            if row is None or not uow.jobs.transition(
                row.job_id, {JobState.QUEUED}, JobState.RUNNING
            ):
                return None  # none, or cancelled just now: the loop looks again
            self._busy.add(row.template_id)
            return _Claimed(
                msg.DownloadTemplate.model_validate(row.command),
                uow.pool.get(row.template_id),
                row.validator,
            )

    def _resume(
        self, service: Service[AgentUnitOfWork], job_id: str, validator: str | None
    ) -> Resume:
        def remember(new: str | None) -> None:
            with service.transaction(VALIDATOR) as uow:
                uow.jobs.set_validator(job_id, new)

        return Resume(validator=validator, remember=remember, stopping=self._stop.is_set)

    def _cancelled_or_stopping(self, job_id: str) -> Callable[[], bool]:
        return lambda: self._stop.is_set() or job_id in self._cancelled

    def _run(self, service: Service[AgentUnitOfWork], claimed: _Claimed) -> None:
        job, stored = claimed.job, claimed.stored
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
            done = self.transfer(
                job,
                self._progress(service, report),
                self._cancelled_or_stopping(job.job_id),
                self._resume(service, job.job_id, claimed.validator),
            )
        except DownloadError as err:
            self._fail(service, job, report, err.code, err.message, started=started)
            return
        except Exception as err:
            log.exception("job.crashed")
            # The text of an unexpected error (paths, SQL) is for the log; the failure event
            # ends up in the deploy's reply.
            why = f"the download failed unexpectedly ({type(err).__name__}); see the agent's log"
            self._fail(service, job, report, msg.DownloadFailure.INTERNAL, why, started=started)
            return
        with self._lock:
            cancelled_meanwhile = job.job_id in self._cancelled
        if cancelled_meanwhile:
            # Finished as the cancel came: nobody wants this copy (its deploy moved on, or its
            # template was deleted), so it does not stay.
            Path(done.path).unlink(missing_ok=True)
            why = f"cancelled as it finished; the copy at {done.path} was removed"
            self._fail(service, job, report, msg.DownloadFailure.CANCELLED, why, started=started)
            return
        stored = StoredFile(
            job.template_id,
            self.pool_id,
            done.path,
            done.size,
            done.digest,
            done.verified_digest,
            image_digest=None if done.image_digest == done.digest else done.image_digest,
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
            if cached:
                uow.pool.touch(stored.template_id)
            else:
                uow.pool.put(stored)
            uow.jobs.set_state(job.job_id, JobState.SUCCEEDED)
            uow.emit(
                msg.DownloadCompleted(
                    **report,
                    path=stored.path,
                    size=stored.size,
                    digest=stored.verified_digest,
                    image_digest=stored.image_digest,
                    cached=cached,
                    duration_s=duration,
                )
            )
        with service.transaction(cache.ENFORCE) as uow:
            # The copy just deployed stays, whatever the limits say of it.
            cache.enforce(uow, self.host_id, self.pool_id, protect={stored.template_id})
        log.info("job.succeeded", cached=cached, size=stored.size, duration_s=duration)
        outcome = metrics.CACHED if cached else metrics.SUCCEEDED
        self._count(service, outcome, metrics.NO_CODE, duration)

    def _fail(
        self,
        service: Service[AgentUnitOfWork],
        job: msg.DownloadTemplate,
        report: dict[str, str],
        code: msg.DownloadFailure,
        message: str,
        *,
        started: float,
    ) -> None:
        cancelled = code is msg.DownloadFailure.CANCELLED
        with self._lock:
            report_cancel = self._cancelled.get(job.job_id)
        if cancelled and report_cancel is None and self._stop.is_set():
            return  # stopping: the job stays RUNNING, held at the next start, its partial kept
        state = JobState.CANCELLED if report_cancel is not None else JobState.FAILED
        with service.transaction(FAILED) as uow:
            uow.jobs.set_state(job.job_id, state, code, message)
            if report_cancel is not False:
                uow.emit(msg.DownloadFailed(**report, code=code, message=clip(message)))
        log.warning("job.failed", code=code, error=message)
        outcome = metrics.CANCELLED if state is JobState.CANCELLED else metrics.FAILED
        self._count(service, outcome, str(code), time.monotonic() - started)

    def _count(
        self, service: Service[AgentUnitOfWork], outcome: str, code: str, duration: float
    ) -> None:
        """Every end is counted; each is timed by how long it really took, failures too."""
        name = service.definition.name
        metrics.downloads.labels(name, self.host_id, outcome, code).inc()
        metrics.download_seconds.labels(name, self.host_id, outcome).observe(duration)

    def _progress(
        self, service: Service[AgentUnitOfWork], report: dict[str, str]
    ) -> Callable[[int, int | None], None]:
        """At most one progress event a second, each through the outbox. The transfer's first
        call says where the download starts (the bytes of a partial kept): neither counted as
        downloaded nor in the rate."""
        last: dict[str, float] = {"at": 0.0}
        started = time.monotonic()
        counted = metrics.bytes_downloaded.labels(service.definition.name, self.host_id)
        start = seen = -1

        def progress(done: int, total: int | None) -> None:
            nonlocal start, seen
            if start < 0:
                start = seen = done
            # `done` restarts from 0 when a download does; count only what is new.
            counted.inc(max(0, done - seen))
            seen = done
            now = time.monotonic()
            if now - last["at"] < 1.0:
                return
            rate = max(0, done - start) / max(now - started, 1e-6)
            last["at"] = now
            with service.transaction(PROGRESS) as uow:
                uow.emit(
                    msg.DownloadProgress(**report, bytes_done=done, total=total, rate_bps=rate)
                )

        return progress
