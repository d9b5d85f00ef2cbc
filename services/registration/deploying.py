"""Deploy handlers: load the deploy, let `domain.deploy` move it on, save it, send what it says."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import structlog

from directdl.bus.processing import DEFERRED, Deferred
from directdl.contracts import deploy as msg
from directdl.contracts.bounds import clip
from directdl.contracts.download import (
    CancelDownload,
    DownloadCompleted,
    DownloadFailed,
    DownloadFailure,
    DownloadsRecovered,
    DownloadTemplate,
    ResumeDownload,
)
from directdl.contracts.errors import Conflict, NotFound
from directdl.contracts.host import StoredTemplate
from directdl.contracts.senders import REGISTRATION
from directdl.runtime import metrics
from registration import preparing
from registration.domain.deploy import (
    Attempt,
    Deploy,
    Step,
    attempt_abandoned,
    attempt_completed,
    attempt_failed,
    not_resumed,
    start,
)
from registration.domain.host import Host
from registration.domain.template import Template, request_headers
from registration.policy import DownloadPolicy
from registration.uow import RegistrationUnitOfWork
from registration.verifying import awaited_deploy, copy_problem

log = structlog.get_logger(__name__)

MOVES_ON = (DownloadTemplate, msg.TemplateDeployFailed)
"""What a step of a deploy may publish: the download for the next host, or the failure."""
GIVES_UP = (*MOVES_ON, CancelDownload)
"""What giving up on a silent host's attempt may publish: a step, and the cancel for it."""
RECOVERS = (ResumeDownload, CancelDownload)
"""What the answer to a restarted host's unfinished jobs may publish, for each job."""


def _now() -> datetime:
    return datetime.now(UTC)


def deploy_template(
    cmd: msg.DeployTemplate, uow: RegistrationUnitOfWork, policy: DownloadPolicy
) -> Deferred:
    """Start the deploy; the answer is deferred until it has ended (see `apply_step`)."""
    template = uow.templates.get(cmd.template_id)
    if template is None:
        raise NotFound(f"no template with id {cmd.template_id!r}", details={"field": "template_id"})
    if cmd.deploy_id is not None and uow.deploys.get(cmd.deploy_id) is not None:
        raise Conflict(
            f"a deploy with id {cmd.deploy_id!r} already exists",
            details={"field": "deploy_id", "value": cmd.deploy_id},
        )
    assert uow.message is not None
    step = start(
        cmd,
        template,
        uow.hosts.in_zone(cmd.zone_id),
        _now(),
        reply_to=uow.message.reply_to,
        correlation_id=uow.message.correlation_id,
    )
    apply_step(uow, step, template, policy)
    return DEFERRED


def download_completed(
    evt: DownloadCompleted, uow: RegistrationUnitOfWork, policy: DownloadPolicy
) -> None:
    deploy = awaited_deploy(uow, evt)
    if deploy is None:
        return
    template = uow.templates.get(deploy.template_id)
    problem = copy_problem(uow, template, evt)
    if problem is not None:
        # The agent was sent the checksum and checked it, so a copy that does not match is
        # that host's fault (broken, or lying), not the source's: another host is tried, as
        # for any failure a host can cause, within the same bound.
        log.warning("deploy.copy_refused", host_id=evt.host_id, job_id=evt.job_id, error=problem)
        _fail(uow, policy, deploy, evt.job_id, DownloadFailure.DIGEST_MISMATCH, problem)
        return
    host = uow.hosts.get(evt.host_id)
    if host is not None:
        stored = StoredTemplate(
            template_id=evt.template_id,
            pool_id=evt.pool_id,
            path=evt.path,
            size=evt.size,
            digest=evt.digest,
        )
        # Before the host's next inventory lists it. An inventory the host sent before the
        # download ended may still be behind in `registration.hosts` and erase it for a
        # moment; the host's next one, sent because storing the file changed its digest, is
        # behind that one in the same queue and puts it back. Meanwhile a deploy may send the
        # template there again, and the agent answers from its pool: no harm.
        uow.hosts.save_holdings(host.holding(stored))
    apply_step(uow, attempt_completed(deploy, evt, _now()), template, policy)


def download_failed(
    evt: DownloadFailed, uow: RegistrationUnitOfWork, policy: DownloadPolicy
) -> None:
    deploy = awaited_deploy(uow, evt)
    if deploy is not None:
        _fail(uow, policy, deploy, evt.job_id, evt.code, evt.message)


def downloads_recovered(evt: DownloadsRecovered, uow: RegistrationUnitOfWork) -> None:
    """Tell a restarted host, for each unfinished job it holds, to resume it if its deploy
    still waits for it there, and to cancel it if not. Nothing is changed here, so answering
    a redelivery again is harmless: an agent ignores commands for jobs it no longer holds."""
    for job in evt.jobs:
        why = not_resumed(uow.deploys.for_attempt(job.job_id), job, evt.host_id)
        log.info(
            "deploy.job_recovered",
            host_id=evt.host_id,
            job_id=job.job_id,
            deploy_id=job.deploy_id,
            resumed=why is None,
            reason=why,
        )
        if why is None:
            uow.emit(
                ResumeDownload(job_id=job.job_id, deploy_id=job.deploy_id),
                routing_key=ResumeDownload.address(host_id=evt.host_id),
            )
        else:
            _cancel(uow, evt.host_id, job.job_id, job.deploy_id, why)


def _fail(
    uow: RegistrationUnitOfWork,
    policy: DownloadPolicy,
    deploy: Deploy,
    job_id: str,
    code: DownloadFailure,
    message: str,
) -> None:
    """An attempt failed, as its host said (or as the copy it reported showed)."""
    template, message, hosts = _failing(uow, deploy, message)
    apply_step(uow, attempt_failed(deploy, job_id, code, message, hosts, _now()), template, policy)


def abandon(
    uow: RegistrationUnitOfWork, policy: DownloadPolicy, deploy: Deploy, job_id: str, why: str
) -> None:
    """An attempt is given up on without its host having said it ended: it is also cancelled
    (see `heartbeats.fail_over`)."""
    template, why, hosts = _failing(uow, deploy, why)
    apply_step(uow, attempt_abandoned(deploy, job_id, why, hosts, _now()), template, policy)


def _failing(
    uow: RegistrationUnitOfWork, deploy: Deploy, message: str
) -> tuple[Template | None, str, list[Host]]:
    """What failing an attempt of `deploy` needs: its template, `message` without the
    template's secrets, and the hosts it may move on to."""
    template = uow.templates.get(deploy.template_id)
    if template is None:
        # Deleted during the deploy: no host can be sent it, so the deploy ends.
        return None, message, []
    # A host's message may quote the URL it was given, secrets and all.
    return template, template.hide_secrets(message), uow.hosts.in_zone(deploy.zone_id)


def _cancel(
    uow: RegistrationUnitOfWork, host_id: str, job_id: str, deploy_id: str, why: str
) -> None:
    uow.emit(
        CancelDownload(job_id=job_id, deploy_id=deploy_id, reason=clip(why)),
        routing_key=CancelDownload.address(host_id=host_id),
    )


def apply_step(
    uow: RegistrationUnitOfWork, step: Step, template: Template | None, policy: DownloadPolicy
) -> None:
    """Save the deploy, then send what its step says: the cancel of an attempt given up on,
    the next download, or the end and the reply `template.deploy` was waiting for."""
    deploy = step.deploy
    uow.deploys.save(deploy)
    if step.cancelled is not None:
        # Should the host come back still running the job (or holding it, after a restart),
        # it stops: another host may be downloading the same template by now.
        cancelled = step.cancelled
        why = f"deploy {deploy.deploy_id} gave up on the job: {cancelled.message}"
        _cancel(uow, cancelled.host_id, cancelled.job_id, deploy.deploy_id, why)
    if step.started is not None:
        assert template is not None  # no attempt starts without one: see `_fail`
        started = partial(
            log.info,
            "deploy.started",
            deploy_id=deploy.deploy_id,
            template_id=template.id,
            host_id=step.started.host_id,
        )
        uow.after_commit(started)
        uow.emit(
            _download(deploy, step.started, template, policy),
            routing_key=DownloadTemplate.address(host_id=step.started.host_id),
        )
    if step.ended is not None:
        uow.emit(step.ended)
        uow.after_commit(partial(_log_ended, step.ended))
        uow.after_commit(metrics.deploys.labels(REGISTRATION, *_outcome(step.ended)).inc)
        # One host's deploy of a prepare: the prepare moves on (its next host, or its end).
        preparing.deploy_ended(uow, deploy, step.ended, policy)
    if step.reply is not None and deploy.reply_to is not None:
        uow.reply(deploy.reply_to, deploy.correlation_id, step.reply)


def _log_ended(ended: msg.TemplateDeployed | msg.TemplateDeployFailed) -> None:
    if isinstance(ended, msg.TemplateDeployFailed):
        log.warning(
            "deploy.ended",
            deploy_id=ended.deploy_id,
            code=ended.code.value,
            attempts=len(ended.attempts),
            error=ended.message,
        )
    else:
        log.info(
            "deploy.ended",
            deploy_id=ended.deploy_id,
            host_id=ended.host_id,
            cached=ended.cached,
            duration_s=ended.duration_s,
        )


def _outcome(ended: msg.TemplateDeployed | msg.TemplateDeployFailed) -> tuple[str, str]:
    """The deploy's outcome and code, as `directdl_deploys_total` labels them."""
    if isinstance(ended, msg.TemplateDeployFailed):
        return metrics.FAILED, ended.code.value
    return (metrics.CACHED if ended.cached else metrics.SUCCEEDED), metrics.NO_CODE


def _download(
    deploy: Deploy, attempt: Attempt, template: Template, policy: DownloadPolicy
) -> DownloadTemplate:
    return DownloadTemplate(
        job_id=attempt.job_id,
        deploy_id=deploy.deploy_id,
        template_id=template.id,
        url=template.url,
        protocol=template.protocol,
        format=template.format,
        checksum=template.checksum,
        headers=request_headers(template),
        expected_size=template.size,
        pool_id=deploy.requested_pool_id,
        timeouts=policy.timeouts,
        max_attempts=policy.max_attempts,
        checksum_attempts=policy.checksum_attempts,
        denied_networks=policy.denied_networks,
        allowed_networks=policy.allowed_networks,
        cache=policy.cache,
    )
