"""Prepare handlers: a template copied to many hosts of a zone, one deploy per host, at most
`directdl.template.prepare.concurrency` at a time; the answer once every host has ended.

Each host's deploy is an ordinary one that names its host, so it never fails over to another:
the point is to fill that host. When one ends (`deploying.apply_step` calls `deploy_ended`), its
host's state is recorded and the next queued host's deploy starts. The reply is a success
with each host's state even when some or all failed: partial success is the normal outcome
of a fan-out, and the caller learns which hosts to look at.
"""

from __future__ import annotations

from datetime import UTC, datetime

from directdl.bus.processing import DEFERRED, Deferred
from directdl.contracts.bounds import clip
from directdl.contracts.deploy import DeployTemplate, TemplateDeployed, TemplateDeployFailed
from directdl.contracts.download import DownloadTemplate
from directdl.contracts.errors import MessageError, NotFound
from directdl.contracts.prepare import (
    PrepareResult,
    PrepareState,
    PrepareTemplate,
    TemplatePrepared,
    TemplatePrepareProgress,
)
from directdl.contracts.reply import Reply
from directdl.settings_catalog import PREPARE_CONCURRENCY
from registration import deploying
from registration.domain.deploy import Deploy, start
from registration.domain.prepare import Prepare, host_changed, new_prepare
from registration.domain.template import Template
from registration.policy import DownloadPolicy
from registration.uow import RegistrationUnitOfWork

FANS_OUT = (TemplatePrepareProgress, TemplatePrepared)
"""What a deploy's end may publish when the deploy is one host's of a prepare."""
PREPARES = (DownloadTemplate, *FANS_OUT)
"""What starting a prepare may publish: the first hosts' downloads, and their states."""


def _now() -> datetime:
    return datetime.now(UTC)


def prepare_template(
    cmd: PrepareTemplate, uow: RegistrationUnitOfWork, policy: DownloadPolicy
) -> PrepareResult | Deferred:
    """Start the first hosts' deploys; the answer is deferred until every host has ended."""
    template = uow.templates.get(cmd.template_id)
    if template is None:
        raise NotFound(f"no template with id {cmd.template_id!r}", details={"field": "template_id"})
    assert uow.message is not None
    prepare = new_prepare(
        cmd,
        template,
        uow.hosts.in_zone(cmd.zone_id),
        int(policy.setting(PREPARE_CONCURRENCY)),
        _now(),
        reply_to=uow.message.reply_to,
        correlation_id=uow.message.correlation_id,
    )
    prepare = _fill(uow, prepare, template, policy)
    uow.prepares.save(prepare)
    if prepare.ended:  # no host could even start
        uow.emit(prepare.prepared())
        return prepare.result()
    return DEFERRED


def deploy_ended(
    uow: RegistrationUnitOfWork,
    deploy: Deploy,
    ended: TemplateDeployed | TemplateDeployFailed,
    policy: DownloadPolicy,
) -> None:
    """A deploy ended: when it is one host's of a prepare, that host has ended too, the next
    queued host starts, and once every host has ended the prepare answers."""
    prepare = uow.prepares.for_deploy(deploy.deploy_id)
    host = prepare.for_deploy(deploy.deploy_id) if prepare is not None else None
    if prepare is None or host is None or host.state.ended:
        return
    now = _now()
    if isinstance(ended, TemplateDeployFailed):
        prepare, changed = host_changed(
            prepare, host.host_id, PrepareState.FAILED, now, code=ended.code, message=ended.message
        )
    else:
        state = PrepareState.CACHED if ended.cached else PrepareState.SUCCEEDED
        prepare, changed = host_changed(prepare, host.host_id, state, now)
    uow.emit(prepare.progress(changed))
    prepare = _fill(uow, prepare, uow.templates.get(prepare.template_id), policy)
    uow.prepares.save(prepare)
    if prepare.ended:
        uow.emit(prepare.prepared())
        if prepare.reply_to is not None:
            uow.reply(prepare.reply_to, prepare.correlation_id, Reply.success(prepare.result()))


def _fill(
    uow: RegistrationUnitOfWork, prepare: Prepare, template: Template | None, policy: DownloadPolicy
) -> Prepare:
    """Start queued hosts while a slot is free; a host whose deploy cannot start (down by
    now, without the pool asked for, or the template deleted) fails at once."""
    while (host := prepare.next_queued()) is not None:
        now = _now()
        try:
            if template is None:
                raise NotFound(
                    f"template {prepare.template_id} was deleted during the prepare",
                    details={"field": "template_id"},
                )
            command = DeployTemplate(
                template_id=template.id,
                zone_id=prepare.zone_id,
                host_id=host.host_id,
                pool_id=prepare.pool_id,
            )
            hosts = uow.hosts.in_zone(prepare.zone_id)
            step = start(command, template, hosts, now, reply_to=None, correlation_id=None)
        except MessageError as error:
            prepare, changed = host_changed(
                prepare,
                host.host_id,
                PrepareState.FAILED,
                now,
                code=error.code,
                message=clip(error.message),
            )
        else:
            deploy_id = step.deploy.deploy_id
            prepare, changed = host_changed(
                prepare, host.host_id, PrepareState.RUNNING, now, deploy_id=deploy_id
            )
            deploying.apply_step(uow, step, template, policy)
        uow.emit(prepare.progress(changed))
    return prepare
