"""The hosts queue: heartbeats and inventories a batch at a time, a run for hosts come Up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from directdl.contracts.host import HostHeartbeat, HostInventory, HostState, RequestInventory
from directdl.liveness import MISSED_HEARTBEATS, HeartbeatClock
from sync_scheduler.adapters.hosts import Known
from sync_scheduler.runs import run
from sync_scheduler.uow import SchedulerUnitOfWork


def heartbeats(
    beats: list[HostHeartbeat], uow: SchedulerUnitOfWork, heartbeat_clock: HeartbeatClock
) -> None:
    """Store every host's latest beat in one upsert; a host that appears or comes back Up in
    an enabled zone is brought up to date at once, all such hosts of the batch in one run;
    a host whose digest this service does not hold is asked for its inventory."""
    heartbeat_clock.observe([b.sent_at for b in beats])
    now = heartbeat_clock.now()
    latest = {b.host_id: b for b in beats}  # in arrival order: the last of each host wins
    known = uow.hosts.known(latest)
    uow.hosts.record_beats(list(latest.values()))
    # A beat older than the stored one (redelivered, or overtaken) changes nothing.
    fresh = [b for b in latest.values() if b.host_id not in known or is_newer(b, known)]
    enabled = uow.projections.enabled_zones()
    came_up = [
        b.host_id
        for b in fresh
        if b.state is HostState.UP
        and b.zone_id in enabled
        and not (b.host_id in known and known[b.host_id].is_up(now))
    ]
    ask_for_inventories(uow, [b for b in fresh if b.state is HostState.UP], known, now)
    if came_up:
        run(uow, "host", now, host_ids=came_up)


def inventories(
    listed: list[HostInventory], uow: SchedulerUnitOfWork, heartbeat_clock: HeartbeatClock
) -> None:
    """Store what each host's trust store holds, where its digest changed. A host heard from
    before its first inventory (this service missed it, and asked) found nothing to plan with
    when it came Up: it is planned for now."""
    latest = {i.host_id: i for i in listed}
    had = uow.hosts.inventory_digests(latest)
    uow.hosts.record_inventories(list(latest.values()))
    first = [host_id for host_id in latest if host_id not in had]
    if not first:
        return
    now = heartbeat_clock.now()
    enabled = uow.projections.enabled_zones()
    waiting = [
        host_id
        for host_id, seen in uow.hosts.known(first).items()
        if seen.is_up(now) and latest[host_id].zone_id in enabled
    ]
    if waiting:
        run(uow, "host", now, host_ids=sorted(waiting))


def ask_for_inventories(
    uow: SchedulerUnitOfWork,
    beats: Sequence[HostHeartbeat],
    known: Mapping[str, Known],
    now: datetime,
) -> None:
    """A beat whose digest differs from the stored inventory's: ask that host again, at most
    once in MISSED_HEARTBEATS intervals, so that a slow answer is not asked for at every beat."""
    stored = uow.hosts.inventory_digests([b.host_id for b in beats])
    asked = []
    for beat in beats:
        if stored.get(beat.host_id) == beat.inventory_digest:
            continue
        seen = known.get(beat.host_id)
        last = seen.inventory_requested_at if seen else None
        wait = timedelta(seconds=beat.interval_seconds * MISSED_HEARTBEATS)
        if last is not None and now - last < wait:
            continue
        uow.emit(
            RequestInventory(digest_seen=beat.inventory_digest),
            RequestInventory.address(host_id=beat.host_id),
        )
        asked.append(beat.host_id)
    if asked:
        uow.hosts.inventory_requested(asked, now)


def is_newer(beat: HostHeartbeat, known: Mapping[str, Known]) -> bool:
    return known[beat.host_id].last_seen < beat.sent_at
