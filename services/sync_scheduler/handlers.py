"""Sync-scheduler handlers: runs on request and on the timer's tick, zone switches, and the
events its projections are built from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from directdl.bus.processing import Route, routes, without_inbox
from directdl.contracts import certificate as certs
from directdl.contracts import sync as msg
from directdl.contracts.host import HostHeartbeat
from sync_scheduler.runs import run
from sync_scheduler.uow import SchedulerUnitOfWork

Interval = Callable[[], float]
"""Seconds between timed runs now; 0 when the task is disabled."""


def run_now(cmd: msg.RunSync, uow: SchedulerUnitOfWork) -> msg.SyncReport:
    return run(uow, "request", zone_id=cmd.zone_id)


def tick(cmd: msg.SyncTick, uow: SchedulerUnitOfWork, interval: Interval) -> None:
    # Each replica's timer ticks; the one active consumer runs once per interval. Only timed
    # runs count: a run for one host or one zone leaves the others still to be checked.
    seconds = interval()
    if seconds <= 0:
        return
    last = uow.projections.last_run_started("timer")
    if last is not None and datetime.now(UTC) - last < timedelta(seconds=seconds / 2):
        return
    run(uow, "timer")


def enable_zone(cmd: msg.EnableZone, uow: SchedulerUnitOfWork) -> msg.ZoneSync:
    uow.projections.set_zone(cmd.zone_id, True)
    return msg.ZoneSync(zone_id=cmd.zone_id, enabled=True)


def disable_zone(cmd: msg.DisableZone, uow: SchedulerUnitOfWork) -> msg.ZoneSync:
    uow.projections.set_zone(cmd.zone_id, False)
    return msg.ZoneSync(zone_id=cmd.zone_id, enabled=False)


def heartbeat(evt: HostHeartbeat, uow: SchedulerUnitOfWork) -> None:
    """A host that appears or comes back Up is brought up to date at once."""
    if uow.projections.record_host(evt) and evt.zone_id in uow.projections.enabled_zones():
        run(uow, "host", host_id=evt.host_id)


def certificate_uploaded(evt: certs.CertificateUploaded, uow: SchedulerUnitOfWork) -> None:
    uow.projections.record_certificate(evt.certificate)
    # An upload to the zone puts it back everywhere; one to a named host, there.
    if evt.host_id is not None:
        uow.projections.allow(evt.certificate.id, evt.host_id)
    else:
        uow.projections.allow_everywhere(evt.certificate.id)


def certificate_revoked(evt: certs.CertificateRevoked, uow: SchedulerUnitOfWork) -> None:
    uow.projections.record_certificate(evt.certificate)
    if evt.host_id is not None:  # revoked from one host: keep it away from that host only
        uow.projections.hold_back(evt.certificate.id, evt.host_id)


def certificate_deleted(evt: certs.CertificateDeleted, uow: SchedulerUnitOfWork) -> None:
    uow.projections.forget_certificate(evt.certificate.id)


def queues(interval: Interval) -> dict[str, dict[str, Route]]:
    return {
        "commands": routes(
            (msg.RunSync, run_now),
            (msg.SyncTick, lambda cmd, uow: tick(cmd, uow, interval)),
            (msg.EnableZone, enable_zone),
            (msg.DisableZone, disable_zone),
        ),
        "events": without_inbox(
            routes(
                (HostHeartbeat, heartbeat),
                (certs.CertificateUploaded, certificate_uploaded),
                (certs.CertificateRevoked, certificate_revoked),
                (certs.CertificateDeleted, certificate_deleted),
            ),
            HostHeartbeat,
        ),
    }
