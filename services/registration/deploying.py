"""Deploy orchestration: pick an Up host, send it the download, move on when it fails.

The reply to `template.deploy` is deferred until the deploy ends; the agents' outcome events
drive it forward, and a watchdog fails attempts on hosts that fall silent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog

from directdl.bus.processing import DEFERRED, Deferred
from directdl.contracts import deploy as msg
from directdl.contracts.bounds import clip
from directdl.contracts.deploy import AttemptState
from directdl.contracts.download import (
    DownloadCompleted,
    DownloadFailed,
    DownloadFailure,
    DownloadTemplate,
)
from directdl.contracts.errors import ErrorCode, MessageError, NotFound
from directdl.contracts.host import HostHeartbeat, HostList, HostState, ListHosts, StoredTemplate
from directdl.contracts.reply import Reply
from directdl.runtime import metrics
from registration.adapters.deploys import attempt_views, finish
from registration.adapters.orm import AttemptRow, DeployRow
from registration.domain.deploy import candidates, retry_elsewhere
from registration.domain.template import Template, request_headers
from registration.policy import DownloadPolicy
from registration.uow import RegistrationUnitOfWork
from registration.verifying import awaited_attempt, copy_problem

log = structlog.get_logger(__name__)

MOVES_ON = (DownloadTemplate, msg.TemplateDeployFailed)
"""What a step of a deploy may publish: the download for the next host, or the failure."""


def _now() -> datetime:
    return datetime.now(UTC)


def deploy_template(
    cmd: msg.DeployTemplate, uow: RegistrationUnitOfWork, policy: DownloadPolicy
) -> Deferred:
    template = uow.templates.get(cmd.template_id)
    if template is None:
        raise NotFound(f"no template with id {cmd.template_id!r}", details={"field": "template_id"})
    if cmd.zone_id not in template.zone_ids:
        raise NotFound(
            f"template {template.name!r} is not registered in zone {cmd.zone_id!r}",
            details={"field": "zone_id", "value": cmd.zone_id, "zones": list(template.zone_ids)},
        )
    now = _now()
    if cmd.host_id is not None:
        host = uow.hosts.get(cmd.host_id)
        if host is None or host.zone_id != cmd.zone_id:
            raise NotFound(
                f"no host {cmd.host_id!r} in zone {cmd.zone_id!r}", details={"field": "host_id"}
            )
        if not host.is_up(now):
            raise MessageError(
                f"host {cmd.host_id!r} is not Up (last heard from {host.last_seen.isoformat()})",
                code=ErrorCode.UNAVAILABLE,
                details={"field": "host_id", "value": cmd.host_id},
            )
    assert uow.message is not None
    deploy = uow.deploys.add(
        DeployRow(
            deploy_id=str(uuid.uuid4()),
            template_id=template.id,
            zone_id=cmd.zone_id,
            requested_host_id=cmd.host_id,
            requested_pool_id=cmd.pool_id,
            state=AttemptState.RUNNING,
            reply_to=uow.message.reply_to,
            correlation_id=uow.message.correlation_id,
            created_at=now,
            updated_at=now,
        )
    )
    if not _try_next_host(uow, deploy, template, policy, now):
        raise MessageError(
            f"no Up host in zone {cmd.zone_id!r} can take template {template.name!r}",
            code=ErrorCode.UNAVAILABLE,
            details={"zone_id": cmd.zone_id},
        )
    return DEFERRED


def _try_next_host(
    uow: RegistrationUnitOfWork,
    deploy: DeployRow,
    template: Template,
    policy: DownloadPolicy,
    now: datetime,
) -> bool:
    """Send the download to the best untried Up host; False when none is left."""
    tried = {a.host_id for a in deploy.attempts}
    in_zone = uow.hosts.in_zone(deploy.zone_id)
    if deploy.requested_host_id is not None:
        in_zone = [h for h in in_zone if h.host_id == deploy.requested_host_id]
    hosts = candidates(in_zone, deploy.zone_id, template.id, tried, now, deploy.requested_pool_id)
    if not hosts:
        return False
    host = hosts[0]
    job_id = str(uuid.uuid4())
    uow.deploys.start_attempt(deploy, job_id, host.host_id, now)
    uow.emit(
        DownloadTemplate(
            job_id=job_id,
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
        ),
        routing_key=DownloadTemplate.address(host_id=host.host_id),
    )
    return True


def download_completed(
    evt: DownloadCompleted, uow: RegistrationUnitOfWork, policy: DownloadPolicy
) -> None:
    attempt = awaited_attempt(uow, evt)
    if attempt is None:
        return
    problem = copy_problem(uow, uow.templates.get(attempt.deploy.template_id), evt)
    if problem is not None:
        # The agent was sent the checksum and checked it, so a copy that does not match is
        # that host's fault (broken, or lying), not the source's: another host is tried, as
        # for any failure a host can cause, within the same bound.
        log.warning("deploy.copy_refused", host_id=evt.host_id, job_id=evt.job_id, error=problem)
        fail_attempt(uow, attempt, DownloadFailure.DIGEST_MISMATCH, problem, policy)
        return
    now = _now()
    _settle(attempt, AttemptState.SUCCEEDED, None, None, now)
    uow.hosts.add_template(
        evt.host_id,
        StoredTemplate(
            template_id=evt.template_id,
            pool_id=evt.pool_id,
            path=evt.path,
            size=evt.size,
            digest=evt.digest,
        ),
    )
    deploy = attempt.deploy
    started = deploy.created_at
    fields = msg.TemplateDeployedFields(
        deploy_id=deploy.deploy_id,
        template_id=deploy.template_id,
        zone_id=deploy.zone_id,
        host_id=evt.host_id,
        pool_id=evt.pool_id,
        path=evt.path,
        size=evt.size,
        digest=evt.digest,
        cached=evt.cached,
        duration_s=round((now - started).total_seconds(), 3),
        attempts=attempt_views(deploy),
    )
    finish(deploy, AttemptState.SUCCEEDED, fields.model_dump(mode="json"), now)
    outcome = "cached" if evt.cached else "succeeded"
    uow.after_commit(metrics.deploys.labels(outcome).inc)
    uow.emit(msg.TemplateDeployed(**fields.model_dump()))
    if deploy.reply_to:
        result = msg.DeployResult(**fields.model_dump())
        uow.reply(deploy.reply_to, deploy.correlation_id, Reply.success(result))


def download_failed(
    evt: DownloadFailed, uow: RegistrationUnitOfWork, policy: DownloadPolicy
) -> None:
    attempt = awaited_attempt(uow, evt)
    if attempt is None:
        return
    fail_attempt(uow, attempt, evt.code, evt.message, policy)


def fail_attempt(
    uow: RegistrationUnitOfWork,
    attempt: AttemptRow,
    code: DownloadFailure,
    message: str,
    policy: DownloadPolicy,
) -> None:
    now = _now()
    deploy = attempt.deploy
    template = uow.templates.get(deploy.template_id)
    if template is not None:  # a host's message may quote the URL it was given, secrets and all
        message = template.hide_secrets(message)
    _settle(attempt, AttemptState.FAILED, code, message, now)
    if (
        template is not None
        and retry_elsewhere(code, len(deploy.attempts))
        and _try_next_host(uow, deploy, template, policy, now)
    ):
        return
    attempts = attempt_views(deploy)
    summary = f"deploy of template {deploy.template_id} failed after {len(attempts)} attempt(s)"
    last = f"{attempt.host_id}: {code}: {message}"
    failed = msg.TemplateDeployFailed(
        deploy_id=deploy.deploy_id,
        template_id=deploy.template_id,
        zone_id=deploy.zone_id,
        code=code,
        message=clip(f"{summary}; last, {last}"),
        attempts=attempts,
    )
    finish(deploy, AttemptState.FAILED, failed.model_dump(mode="json"), now)
    uow.after_commit(metrics.deploys.labels("failed").inc)
    uow.emit(failed)
    if deploy.reply_to:
        details = {
            "deploy_id": deploy.deploy_id,
            "attempts": [a.model_dump(mode="json") for a in attempts],
        }
        reply = Reply.failure(ErrorCode.DOWNLOAD_FAILED, failed.message, details)
        uow.reply(deploy.reply_to, deploy.correlation_id, reply)


def _settle(
    attempt: AttemptRow,
    state: AttemptState,
    code: DownloadFailure | None,
    message: str | None,
    now: datetime,
) -> None:
    attempt.state = state
    attempt.error_code = code
    attempt.message = message
    attempt.finished_at = now


def host_heartbeat(evt: HostHeartbeat, uow: RegistrationUnitOfWork, policy: DownloadPolicy) -> None:
    uow.hosts.record(evt)
    if evt.state is not HostState.UP:
        fail_silent_hosts(uow, policy, gone={evt.host_id})


def fail_silent_hosts(
    uow: RegistrationUnitOfWork, policy: DownloadPolicy, gone: set[str] | None = None
) -> int:
    """Attempts on hosts that stopped, or fell silent, fail over to another host."""
    now = _now()
    failed = 0
    for attempt in uow.deploys.running_attempts():
        host = uow.hosts.get(attempt.host_id)
        if attempt.host_id in (gone or set()) or host is None or not host.is_up(now):
            why = f"host {attempt.host_id} is not Up"
            fail_attempt(uow, attempt, DownloadFailure.HOST_DOWN, why, policy)
            failed += 1
    return failed


def list_hosts(cmd: ListHosts, uow: RegistrationUnitOfWork) -> HostList:
    return HostList(items=uow.hosts.views(cmd.zone_id, _now()))
