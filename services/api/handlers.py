"""Gateway handlers: API keys for operators, and the deploy events that end prepareTemplate jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from api.domain.jobs import OUTCOME, Job
from api.domain.keys import ApiKey, new_key_pair
from api.uow import ApiUnitOfWork
from directdl.bus.dispatch import Handlers, On
from directdl.contracts import apikey as msg
from directdl.contracts import deploy, download
from directdl.contracts.errors import Conflict, NotFound
from directdl.runtime.announce import ANNOUNCE_HANDLERS

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def create_key(cmd: msg.CreateApiKey, uow: ApiUnitOfWork, clock: Clock) -> msg.ApiKeyCreated:
    if uow.keys.named(cmd.name) is not None:
        raise Conflict(
            f"an API key named {cmd.name!r} exists; revoke it or choose another name",
            details={"field": "name", "value": cmd.name},
        )
    api_key, secret = new_key_pair()
    key = ApiKey(name=cmd.name, api_key=api_key, secret=secret, created_at=clock())
    uow.keys.add(key)
    log.info("apikey.created", name=key.name, api_key=key.api_key[:8])
    return msg.ApiKeyCreated(key=key.view(), secret_key=secret)


def list_keys(cmd: msg.ListApiKeys, uow: ApiUnitOfWork) -> msg.ApiKeyList:
    return msg.ApiKeyList(items=[k.view() for k in uow.keys.listing(cmd.include_revoked)])


def revoke_key(cmd: msg.RevokeApiKey, uow: ApiUnitOfWork, clock: Clock) -> msg.ApiKeyResult:
    if uow.keys.get(cmd.api_key) is None:
        raise NotFound(f"no API key {cmd.api_key[:12]!r}…", details={"field": "api_key"})
    uow.keys.revoke(cmd.api_key, clock())
    key = uow.keys.get(cmd.api_key)
    assert key is not None
    log.info("apikey.revoked", name=key.name, api_key=key.api_key[:8])
    return msg.ApiKeyResult(key=key.view())


# A prepareTemplate job's deploy_id is the job's id; deploys started elsewhere have no job.


def deploy_progressed(evt: download.DownloadProgress, uow: ApiUnitOfWork) -> None:
    job = uow.jobs.get_for_update(evt.deploy_id)
    if job is None or not evt.total:
        return
    advanced = job.advanced(int(100 * evt.bytes_done / evt.total))
    if advanced is not job:
        uow.jobs.save(advanced)


def deploy_ended(
    evt: deploy.TemplateDeployed | deploy.TemplateDeployFailed, uow: ApiUnitOfWork, clock: Clock
) -> None:
    job = uow.jobs.get_for_update(evt.deploy_id)
    if job is None or not job.pending:
        return
    uow.jobs.save(ended(job, evt, clock()))


def ended(
    job: Job, evt: deploy.TemplateDeployed | deploy.TemplateDeployFailed, now: datetime
) -> Job:
    """A deploy's job, once its deploy has ended as this event says."""
    if isinstance(evt, deploy.TemplateDeployed):
        fields = deploy.TemplateDeployedFields.model_validate(evt.model_dump())
        return job.succeeded({OUTCOME: fields.model_dump(mode="json")}, now)
    attempts = "; ".join(f"{a.host_id}: {a.message}" for a in evt.attempts if a.message)
    text = f"Template {evt.template_id} could not be deployed ({evt.code}): {evt.message}" + (
        f". Attempts: {attempts}" if attempts else ""
    )
    return job.failed(530, text, now)


HANDLERS = (
    Handlers(
        commands={
            msg.CreateApiKey: On(create_key),
            msg.ListApiKeys: On(list_keys),
            msg.RevokeApiKey: On(revoke_key),
        },
        events={
            # Each is an upsert whose second run changes nothing: no inbox needed.
            download.DownloadProgress: On(deploy_progressed, idempotent=True),
            deploy.TemplateDeployed: On(deploy_ended, idempotent=True),
            deploy.TemplateDeployFailed: On(deploy_ended, idempotent=True),
        },
    )
    | ANNOUNCE_HANDLERS
)
"""What the gateway does with each message, and what each handler may publish."""
