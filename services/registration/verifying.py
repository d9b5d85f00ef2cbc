"""What registration believes of a host's download report: only what it can check."""

from __future__ import annotations

import structlog

from directdl.contracts.checksum import parse_checksum
from directdl.contracts.download import DownloadCompleted, DownloadReport
from directdl.runtime import metrics
from registration.domain.deploy import Deploy
from registration.domain.outcome import (
    digest_problem,
    refusal,
    reported_copy,
    size_problem,
)
from registration.domain.template import Template
from registration.uow import RegistrationUnitOfWork

log = structlog.get_logger(__name__)

SERVICE = "registration"


def awaited_deploy(uow: RegistrationUnitOfWork, report: DownloadReport) -> Deploy | None:
    """The deploy whose running attempt `report` is about, or None: then the report is ignored,
    counted and logged. It is taken only when every field it names matches that attempt."""
    deploy = uow.deploys.for_attempt(report.job_id)
    reason = refusal(report, deploy)
    if reason is None:
        return deploy
    routing_key = uow.message.routing_key if uow.message else type(report).__name__
    uow.after_commit(metrics.rejected.labels(SERVICE, routing_key, reason).inc)
    awaited = deploy.attempt(report.job_id) if deploy else None
    # A redelivered outcome of a settled attempt lands here too; it is as harmless as a forgery.
    log.warning(
        "deploy.report_ignored",
        reason=reason,
        claimed_job_id=report.job_id,
        claimed_deploy_id=report.deploy_id,
        claimed_template_id=report.template_id,
        claimed_host_id=report.host_id,
        claimed_pool_id=report.pool_id,
        awaited_host_id=awaited.host_id if awaited else None,
    )
    return None


def copy_problem(
    uow: RegistrationUnitOfWork, template: Template | None, evt: DownloadCompleted
) -> str | None:
    """Why the copy a completion reports is not the template, or None when it is: its size and
    digest must match what the template says (its checksum, or without one the digest of the
    first copy a host verified, which the first copy that passes sets)."""
    copy = reported_copy(evt.size, evt.digest)
    if isinstance(copy, str):
        return copy
    if template is None:  # deleted during the deploy: nothing left to compare with
        return None
    problem = size_problem(template, copy)
    if problem is not None:
        return problem
    if template.checksum is not None:
        return digest_problem(parse_checksum(template.checksum), copy, "the template's checksum")
    recorded = uow.templates.record_digest(template.id, str(copy.digest))
    if recorded is None:
        return None
    return digest_problem(parse_checksum(recorded), copy, "the digest of its first verified copy")
