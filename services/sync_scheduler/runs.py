"""A sync run: plan from the projections, ask the certificate service, report what was asked."""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from datetime import UTC, datetime

import structlog

from directdl.contracts import certificate as certs
from directdl.contracts import sync as msg
from directdl.contracts.senders import SYNC_SCHEDULER
from directdl.runtime import metrics
from sync_scheduler.domain.plan import plan
from sync_scheduler.uow import SchedulerUnitOfWork

log = structlog.get_logger(__name__)


RUN_EMITS = (certs.ProvisionCertificate, certs.RevokeCertificate, msg.SyncRunCompleted)
"""What a sync run may publish: the pushes and withdrawals it decides, and its report."""


def run(
    uow: SchedulerUnitOfWork,
    trigger: str,
    now: datetime,
    zone_id: str | None = None,
    host_ids: Collection[str] | None = None,
) -> msg.SyncReport:
    """One run in one transaction: the requests go out through the outbox with its report.
    Which hosts are Up is judged at `now`, the service's HeartbeatClock, so that a backlog of
    heartbeats makes no host look silent.

    The pushes go through the certificate service's commands, so that one place owns
    certificate placement; what each host then did arrives as cert.host.* events.
    """
    started, clock = datetime.now(UTC), time.monotonic()
    zones = {zone_id} if zone_id else uow.projections.enabled_zones()
    decided = plan(
        uow.hosts.up_hosts(now, host_ids),
        uow.projections.certificates(),
        zones,
        uow.projections.held_back(),
    )
    for certificate_id, target in decided.provision:
        uow.emit(certs.ProvisionCertificate(id=certificate_id, host_id=target))
    for certificate_id, zone, target in decided.revoke:
        uow.emit(certs.RevokeCertificate(id=certificate_id, zone_id=zone, host_id=target))
    report = msg.SyncReport(
        run_id=str(uuid.uuid4()),
        trigger=trigger,
        zones=sorted(decided.zones),
        hosts_checked=decided.hosts_checked,
        pushed=len(decided.provision),
        removed=len(decided.revoke),
        failed=0,  # a request that cannot be published fails the transaction, and the run
        started_at=started,
        duration_s=round(time.monotonic() - clock, 4),
    )
    uow.projections.add_run(report.run_id, started, report.model_dump(mode="json"))
    uow.emit(msg.SyncRunCompleted(**report.model_dump()))
    log.info("sync.run", **report.model_dump(mode="json", exclude={"zones", "started_at"}))
    uow.after_commit(metrics.sync_runs.labels(SYNC_SCHEDULER, trigger).inc)
    seconds = metrics.sync_run_seconds.labels(SYNC_SCHEDULER, trigger)
    uow.after_commit(lambda: seconds.observe(report.duration_s))
    return report
