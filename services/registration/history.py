"""Deploy history: what each deploy did, for deploy.list and deploy.get, and the progress its
hosts report, recorded on the running attempt."""

from __future__ import annotations

from datetime import UTC, datetime

from directdl.contracts import deploy as msg
from directdl.contracts.deploy import AttemptState, TemplateDeployedFields, TemplateDeployFailed
from directdl.contracts.download import DownloadProgress
from directdl.contracts.errors import NotFound
from registration.adapters.deploys import DeployFilter
from registration.domain.deploy import Deploy, progressed
from registration.uow import RegistrationUnitOfWork
from registration.verifying import awaited_deploy


def _now() -> datetime:
    return datetime.now(UTC)


def download_progress(evt: DownloadProgress, uow: RegistrationUnitOfWork) -> None:
    """Record the host's latest progress on the attempt it runs; a report about any other
    attempt, or from any other host, is ignored (and counted) as every report is. Each one
    overwrites the one before, so the table runs it without an inbox row (idempotent)."""
    deploy = awaited_deploy(uow, evt)
    if deploy is not None:
        uow.deploys.save(progressed(deploy, evt, _now()))


def list_deploys(cmd: msg.ListDeploys, uow: RegistrationUnitOfWork) -> msg.DeployPage:
    where = DeployFilter(cmd.template_id, cmd.zone_id, cmd.host_id, cmd.state, cmd.id_prefix)
    items, total = uow.deploys.page(where, cmd.page, cmd.page_size)
    now = _now()
    return msg.DeployPage(
        items=[view(d, now) for d in items], total=total, page=cmd.page, page_size=cmd.page_size
    )


def get_deploy(cmd: msg.GetDeploy, uow: RegistrationUnitOfWork) -> msg.DeployView:
    deploy = uow.deploys.get(cmd.deploy_id)
    if deploy is None:
        raise NotFound(
            f"no deploy with id {cmd.deploy_id!r}",
            details={"field": "deploy_id", "value": cmd.deploy_id},
        )
    return view(deploy, _now())


def view(deploy: Deploy, now: datetime) -> msg.DeployView:
    """A deploy as deploy.get describes it: the latest attempt's bytes and rate, and how it
    ended (where the template is, or why it failed)."""
    latest = deploy.attempts[-1] if deploy.attempts else None
    running = deploy.running_attempt
    ended = deploy.state is not AttemptState.RUNNING
    until = deploy.updated_at if ended else now
    fields: dict[str, object] = {}
    outcome = deploy.outcome
    if isinstance(outcome, TemplateDeployedFields):
        fields = outcome.model_dump(
            include={"host_id", "pool_id", "path", "size", "digest", "image_digest", "cached"}
        )
    elif isinstance(outcome, TemplateDeployFailed):
        fields = {"code": outcome.code, "message": outcome.message}
    host_id = fields.pop("host_id", None) or (running.host_id if running else None)
    return msg.DeployView(
        deploy_id=deploy.deploy_id,
        template_id=deploy.template_id,
        zone_id=deploy.zone_id,
        state=deploy.state,
        queued=running is not None and running.queued,
        host_id=host_id,
        bytes_done=latest.bytes_done if latest else None,
        total=latest.total_bytes if latest else None,
        rate_bps=latest.rate_bps if latest else None,
        created_at=deploy.created_at,
        updated_at=deploy.updated_at,
        duration_s=round(max(0.0, (until - deploy.created_at).total_seconds()), 3),
        attempts=deploy.views(),
        **fields,
    )
