"""A deploy's state machine: which host to try, how each attempt ends, and how the deploy does."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from directdl.contracts.bounds import clip
from directdl.contracts.deploy import (
    AttemptState,
    DeployAttempt,
    DeployResult,
    DeployTemplate,
    TemplateDeployed,
    TemplateDeployedFields,
    TemplateDeployFailed,
)
from directdl.contracts.download import (
    DownloadCompleted,
    DownloadFailure,
    DownloadProgress,
    RecoveredJob,
)
from directdl.contracts.errors import ErrorCode, MessageError, NotFound
from directdl.contracts.reply import Reply
from registration.domain.host import Host
from registration.domain.template import Template

MAX_HOSTS = 3

Outcome = TemplateDeployedFields | TemplateDeployFailed
"""What a deploy that has ended is remembered by: what its event said."""


@dataclass(frozen=True)
class Attempt:
    """One host's try; its job_id is the agent's job id."""

    job_id: str
    host_id: str
    started_at: datetime
    state: AttemptState = AttemptState.RUNNING
    error_code: DownloadFailure | None = None
    message: str | None = None
    finished_at: datetime | None = None
    # What the host's last template.download.progress said (or its completion): see `progressed`.
    bytes_done: int | None = None
    total_bytes: int | None = None
    rate_bps: float | None = None
    progress_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.state is AttemptState.RUNNING

    @property
    def queued(self) -> bool:
        """Running, with no progress yet: the host has it waiting for a free download worker."""
        return self.running and self.progress_at is None

    def view(self) -> DeployAttempt:
        return DeployAttempt(
            job_id=self.job_id,
            host_id=self.host_id,
            state=self.state,
            error_code=self.error_code,
            message=self.message,
            started_at=self.started_at,
            finished_at=self.finished_at,
            bytes_done=self.bytes_done,
            total=self.total_bytes,
            rate_bps=self.rate_bps,
            progress_at=self.progress_at,
        )


@dataclass(frozen=True)
class Deploy:
    """A template on its way to a pool: RUNNING with one attempt running, until it has ended."""

    deploy_id: str
    template_id: str
    zone_id: str
    requested_host_id: str | None
    requested_pool_id: str | None  # None lets each host choose its pool
    # Where the answer to template.deploy goes once the deploy has ended, and with which id.
    reply_to: str | None
    correlation_id: str | None
    created_at: datetime
    updated_at: datetime
    state: AttemptState = AttemptState.RUNNING
    attempts: tuple[Attempt, ...] = ()
    outcome: Outcome | None = None

    def attempt(self, job_id: str) -> Attempt | None:
        return next((a for a in self.attempts if a.job_id == job_id), None)

    @property
    def running_attempt(self) -> Attempt | None:
        return next((a for a in self.attempts if a.running), None)

    def views(self) -> list[DeployAttempt]:
        return [a.view() for a in self.attempts]


@dataclass(frozen=True)
class Step:
    """A deploy after something happened to it, and what is to be said about it."""

    deploy: Deploy
    started: Attempt | None = None  # a new attempt, whose host is to be sent the download
    # An attempt given up on while its host may still run it: that host is told to cancel.
    cancelled: Attempt | None = None
    ended: TemplateDeployed | TemplateDeployFailed | None = None
    reply: Reply | None = None  # the deferred answer, once ended, when someone waits for it


def start(
    cmd: DeployTemplate,
    template: Template,
    hosts: Iterable[Host],
    now: datetime,
    *,
    reply_to: str | None,
    correlation_id: str | None,
) -> Step:
    """A new deploy with its first attempt on the best of `hosts` (the zone's). Raises when it
    cannot start: the template is not in the zone, the host named is not an Up host of the
    zone, or no host can take it."""
    if cmd.zone_id not in template.zone_ids:
        raise NotFound(
            f"template {template.name!r} is not registered in zone {cmd.zone_id!r}",
            details={"field": "zone_id", "value": cmd.zone_id, "zones": list(template.zone_ids)},
        )
    hosts = [h for h in hosts if h.zone_id == cmd.zone_id]
    if cmd.host_id is not None:
        _check_named(cmd, next((h for h in hosts if h.host_id == cmd.host_id), None), now)
    deploy = Deploy(
        deploy_id=cmd.deploy_id or str(uuid.uuid4()),
        template_id=template.id,
        zone_id=cmd.zone_id,
        requested_host_id=cmd.host_id,
        requested_pool_id=cmd.pool_id,
        reply_to=reply_to,
        correlation_id=correlation_id,
        created_at=now,
        updated_at=now,
    )
    step = _next_attempt(deploy, hosts, now)
    if step is None:
        raise MessageError(
            f"no Up host in zone {cmd.zone_id!r} can take template {template.name!r}",
            code=ErrorCode.UNAVAILABLE,
            details={"zone_id": cmd.zone_id},
        )
    return step


def _check_named(cmd: DeployTemplate, host: Host | None, now: datetime) -> None:
    if host is None:
        raise NotFound(
            f"no host {cmd.host_id!r} in zone {cmd.zone_id!r}", details={"field": "host_id"}
        )
    if not host.is_up(now):
        raise MessageError(
            f"host {host.host_id!r} is not Up (last heard from {host.last_seen.isoformat()})",
            code=ErrorCode.UNAVAILABLE,
            details={"field": "host_id", "value": host.host_id},
        )


def candidates(deploy: Deploy, hosts: Iterable[Host], now: datetime) -> list[Host]:
    """Up hosts of the zone not tried yet (the one named and with the pool named, when the
    deploy names them): those that hold the template first (no download at all), then those
    with the most room where the download would go. A host whose inventory has not come yet
    has no pool known to put it in, so it is none."""
    pool_id = deploy.requested_pool_id
    tried = {a.host_id for a in deploy.attempts}
    usable = [
        h
        for h in hosts
        if h.zone_id == deploy.zone_id
        and h.is_up(now)
        and h.pools
        and h.host_id not in tried
        and deploy.requested_host_id in (None, h.host_id)
        and (pool_id is None or h.has_pool(pool_id))
    ]
    return sorted(
        usable,
        key=lambda h: (not h.holds(deploy.template_id), -h.free_bytes(pool_id), h.host_id),
    )


def retry_elsewhere(code: DownloadFailure, attempts_made: int) -> bool:
    """Whether a failed attempt moves the deploy on to another host: only when one may do
    better (see `DownloadFailure.another_host_may_succeed`), and at most MAX_HOSTS in all."""
    return code.another_host_may_succeed and attempts_made < MAX_HOSTS


def attempt_completed(deploy: Deploy, report: DownloadCompleted, now: datetime) -> Step:
    """The running attempt `report` is about succeeded (its copy checked): the deploy has too."""
    deploy, _ = _settle(deploy, report.job_id, AttemptState.SUCCEEDED, None, None, now)
    # The last progress may be a second old: the completion says how much there is. A cached
    # copy fetched nothing.
    fetched = 0 if report.cached else report.size
    deploy = _with_attempt(
        deploy, report.job_id, bytes_done=fetched, total_bytes=report.size, rate_bps=None
    )
    fields = TemplateDeployedFields(
        deploy_id=deploy.deploy_id,
        template_id=deploy.template_id,
        zone_id=deploy.zone_id,
        host_id=report.host_id,
        pool_id=report.pool_id,
        path=report.path,
        size=report.size,
        digest=report.digest,
        image_digest=report.image_digest,
        cached=report.cached,
        duration_s=round((now - deploy.created_at).total_seconds(), 3),
        attempts=deploy.views(),
    )
    deploy = replace(deploy, state=AttemptState.SUCCEEDED, outcome=fields)
    reply = Reply.success(DeployResult(**fields.model_dump())) if deploy.reply_to else None
    return Step(deploy, ended=TemplateDeployed(**fields.model_dump()), reply=reply)


def attempt_failed(
    deploy: Deploy,
    job_id: str,
    code: DownloadFailure,
    message: str,
    hosts: Iterable[Host],
    now: datetime,
) -> Step:
    """The running attempt `job_id` failed: the deploy moves on to the best of `hosts` when
    `retry_elsewhere` allows it and one is left, and fails with this attempt's code if not."""
    deploy, last = _settle(deploy, job_id, AttemptState.FAILED, code, message, now)
    if retry_elsewhere(code, len(deploy.attempts)):
        step = _next_attempt(deploy, hosts, now)
        if step is not None:
            return step
    attempts = deploy.views()
    summary = f"deploy of template {deploy.template_id} failed after {len(attempts)} attempt(s)"
    failed = TemplateDeployFailed(
        deploy_id=deploy.deploy_id,
        template_id=deploy.template_id,
        zone_id=deploy.zone_id,
        code=code,
        message=clip(f"{summary}; last, {last.host_id}: {code}: {message}"),
        attempts=attempts,
    )
    deploy = replace(deploy, state=AttemptState.FAILED, outcome=failed)
    reply = None
    if deploy.reply_to:
        details = {
            "deploy_id": deploy.deploy_id,
            "attempts": [a.model_dump(mode="json") for a in attempts],
        }
        reply = Reply.failure(ErrorCode.DOWNLOAD_FAILED, failed.message, details)
    return Step(deploy, ended=failed, reply=reply)


def attempt_abandoned(
    deploy: Deploy, job_id: str, why: str, hosts: Iterable[Host], now: datetime
) -> Step:
    """The running attempt `job_id` is given up on without its host having said it ended (see
    `host_gone`): it fails with `DownloadFailure.HOST_DOWN` as `attempt_failed` says, and its
    host is to cancel the job, should it still run it or hold it after a restart."""
    step = attempt_failed(deploy, job_id, DownloadFailure.HOST_DOWN, why, hosts, now)
    return replace(step, cancelled=step.deploy.attempt(job_id))


def not_resumed(deploy: Deploy | None, job: RecoveredJob, host_id: str) -> str | None:
    """Why `host_id` is not to resume a job it held across a restart, so is to cancel it; None
    when the job is still the running attempt of its deploy, on that host. `deploy` is the one
    with an attempt of the job's id. The reasons go to that host: no other host is named."""
    attempt = deploy.attempt(job.job_id) if deploy is not None else None
    if deploy is None or attempt is None:
        return f"no deploy has an attempt {job.job_id}"
    if (job.deploy_id, job.template_id) != (deploy.deploy_id, deploy.template_id):
        return f"job {job.job_id} is no attempt of deploy {job.deploy_id} of {job.template_id}"
    if attempt.host_id != host_id:
        return f"job {job.job_id} of deploy {deploy.deploy_id} was given to another host"
    if not attempt.running:
        code = f" {attempt.error_code}" if attempt.error_code else ""
        return f"job {job.job_id} of deploy {deploy.deploy_id} has ended: {attempt.state}{code}"
    return None


def host_gone(attempt: Attempt, host: Host | None, now: datetime) -> str | None:
    """Why `host`, the one `attempt` runs on, will not finish it (it stopped, fell silent, or
    is unknown), to fail it with `DownloadFailure.HOST_DOWN`; None while it is Up."""
    if host is not None and host.is_up(now):
        return None
    return f"host {attempt.host_id} is not Up"


def _next_attempt(deploy: Deploy, hosts: Iterable[Host], now: datetime) -> Step | None:
    best = next(iter(candidates(deploy, hosts, now)), None)
    if best is None:
        return None
    attempt = Attempt(job_id=str(uuid.uuid4()), host_id=best.host_id, started_at=now)
    deploy = replace(deploy, attempts=(*deploy.attempts, attempt), updated_at=now)
    return Step(deploy, started=attempt)


def progressed(deploy: Deploy, report: DownloadProgress, now: datetime) -> Deploy:
    """The running attempt `report` is about, as its host's latest progress says: each report
    overwrites the one before, so a redelivered one changes nothing that matters."""
    return _with_attempt(
        deploy,
        report.job_id,
        bytes_done=report.bytes_done,
        total_bytes=report.total,
        rate_bps=report.rate_bps,
        progress_at=now,
    )


def _with_attempt(deploy: Deploy, job_id: str, **changes: object) -> Deploy:
    attempts = tuple(
        replace(a, **changes) if a.job_id == job_id else a  # type: ignore[arg-type]
        for a in deploy.attempts
    )
    return replace(deploy, attempts=attempts)


def _settle(
    deploy: Deploy,
    job_id: str,
    state: AttemptState,
    code: DownloadFailure | None,
    message: str | None,
    now: datetime,
) -> tuple[Deploy, Attempt]:
    attempt = deploy.attempt(job_id)
    if attempt is None or not attempt.running:
        # The reports are checked against the running attempt before they get here.
        raise ValueError(f"deploy {deploy.deploy_id} has no running attempt {job_id}")
    settled = replace(attempt, state=state, error_code=code, message=message, finished_at=now)
    attempts = tuple(settled if a is attempt else a for a in deploy.attempts)
    return replace(deploy, attempts=attempts, updated_at=now), settled
