"""What registration believes of a host's download report: only what it can check.

A report is taken for the attempt a deploy waits for only when every field it names matches
that attempt; a completion's copy only when its size and digest match what the template says
(its checksum, or the digest of the first copy a host verified when it has none).
"""

from __future__ import annotations

import structlog

from directdl.contracts.checksum import parse_checksum
from directdl.contracts.deploy import AttemptState
from directdl.contracts.download import DownloadCompleted, DownloadReport
from directdl.runtime import metrics
from registration.adapters.orm import AttemptRow
from registration.domain.outcome import (
    Awaited,
    digest_problem,
    refusal,
    reported_copy,
    size_problem,
)
from registration.domain.template import Template
from registration.uow import RegistrationUnitOfWork

log = structlog.get_logger(__name__)

SERVICE = "registration"


def awaited_attempt(uow: RegistrationUnitOfWork, report: DownloadReport) -> AttemptRow | None:
    """The running attempt `report` is about, or None: then it is ignored, counted and logged."""
    attempt = uow.deploys.attempt(report.job_id)
    awaited = None
    if attempt is not None:
        awaited = Awaited(
            job_id=attempt.job_id,
            deploy_id=attempt.deploy.deploy_id,
            template_id=attempt.deploy.template_id,
            host_id=attempt.host_id,
            pool_id=attempt.deploy.requested_pool_id,
            running=attempt.state == AttemptState.RUNNING,
        )
    reason = refusal(report, awaited)
    if reason is None:
        return attempt
    routing_key = uow.message.routing_key if uow.message else type(report).__name__
    uow.after_commit(metrics.rejected.labels(SERVICE, routing_key, reason).inc)
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
    """Why the copy a completion reports is not the template, or None when it is.
    Without a checksum, the first copy that passes sets the digest later ones must match."""
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
