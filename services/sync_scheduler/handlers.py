"""Sync-scheduler handlers: runs on request and on the timer's tick, zone switches, and the
events its projections are built from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from directdl.bus.dispatch import Every, Handlers, On, OnBatch
from directdl.contracts import certificate as certs
from directdl.contracts import sync as msg
from directdl.contracts.host import HostHeartbeat, HostInventory, RequestInventory
from directdl.liveness import HeartbeatClock
from directdl.runtime.announce import ANNOUNCE_HANDLERS
from directdl.runtime.live_settings import SETTINGS_HANDLERS
from sync_scheduler.heartbeats import heartbeats, inventories
from sync_scheduler.runs import RUN_EMITS, run
from sync_scheduler.uow import SchedulerUnitOfWork

Interval = Callable[[], float]
"""Seconds between timed runs now; 0 when the task is disabled."""


def run_now(
    cmd: msg.RunSync, uow: SchedulerUnitOfWork, heartbeat_clock: HeartbeatClock
) -> msg.SyncReport:
    return run(uow, "request", heartbeat_clock.now(), zone_id=cmd.zone_id)


def tick(
    cmd: msg.SyncTick,
    uow: SchedulerUnitOfWork,
    interval: Interval,
    heartbeat_clock: HeartbeatClock,
) -> None:
    # Each replica's timer ticks; the one active consumer runs once per interval. Only timed
    # runs count: a run for one host or one zone leaves the others still to be checked.
    seconds = interval()
    if seconds <= 0:
        return
    last = uow.projections.last_run_started("timer")
    if last is not None and datetime.now(UTC) - last < timedelta(seconds=seconds / 2):
        return
    run(uow, "timer", heartbeat_clock.now())


def enable_zone(cmd: msg.EnableZone, uow: SchedulerUnitOfWork) -> msg.ZoneSync:
    uow.projections.set_zone(cmd.zone_id, True)
    return msg.ZoneSync(zone_id=cmd.zone_id, enabled=True)


def disable_zone(cmd: msg.DisableZone, uow: SchedulerUnitOfWork) -> msg.ZoneSync:
    uow.projections.set_zone(cmd.zone_id, False)
    return msg.ZoneSync(zone_id=cmd.zone_id, enabled=False)


def list_zones(cmd: msg.ListZones, uow: SchedulerUnitOfWork) -> msg.ZoneList:
    return msg.ZoneList(
        items=[msg.ZoneSync(zone_id=z, enabled=on) for z, on in uow.projections.zones()]
    )


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


def send_tick(uow: SchedulerUnitOfWork, interval: Interval) -> None:
    """The timer of every replica asks for a run; `tick` decides whether one is due."""
    if interval() > 0:
        uow.emit(msg.SyncTick())


HANDLERS = (
    Handlers(
        commands={
            msg.RunSync: On(run_now, emits=RUN_EMITS),
            msg.SyncTick: On(tick, emits=RUN_EMITS),
            msg.EnableZone: On(enable_zone),
            msg.DisableZone: On(disable_zone),
            msg.ListZones: On(list_zones),
        },
        events={
            certs.CertificateUploaded: On(certificate_uploaded),
            certs.CertificateRevoked: On(certificate_revoked),
            certs.CertificateDeleted: On(certificate_deleted),
        },
        batched={
            # One queue for both, so that a host's inventory is in before the beat that
            # carries its digest.
            "hosts": {
                HostInventory: OnBatch(inventories, emits=RUN_EMITS),
                HostHeartbeat: OnBatch(heartbeats, emits=(*RUN_EMITS, RequestInventory)),
            }
        },
        timers={
            # Not at start: a replica that starts must not ask for a run the others just had.
            "sync-timer": Every("tick_interval", send_tick, (msg.SyncTick,), run_at_start=False)
        },
    )
    | SETTINGS_HANDLERS
    | ANNOUNCE_HANDLERS
)
"""What the sync-scheduler does with each message, and what each handler may publish."""
