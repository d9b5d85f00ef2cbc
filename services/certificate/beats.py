"""What hosts say of themselves, in batches: their heartbeats and their inventories."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from certificate.uow import CertificateUnitOfWork
from directdl.contracts.host import HostHeartbeat, HostInventory, RequestInventory
from directdl.liveness import MISSED_HEARTBEATS, HeartbeatClock

Clock = Callable[[], datetime]


def heartbeats(
    beats: list[HostHeartbeat],
    uow: CertificateUnitOfWork,
    clock: Clock,
    heartbeat_clock: HeartbeatClock,
) -> None:
    """Liveness in one statement per batch; a host whose beat carries a digest other than the
    inventory held is asked for it again, at most once per 3 of its intervals."""
    uow.hosts.record_beats(beats)
    now = clock()
    latest = {b.host_id: b for b in beats}
    held = uow.hosts.inventoried(list(latest))
    asked = []
    for beat in latest.values():
        known = held.get(beat.host_id)
        if known is None or known.digest == beat.inventory_digest:
            continue
        patience = timedelta(seconds=beat.interval_seconds * MISSED_HEARTBEATS)
        if known.asked_at is not None and now - known.asked_at < patience:
            continue
        request = RequestInventory(digest_seen=beat.inventory_digest)
        uow.emit(request, routing_key=RequestInventory.address(host_id=beat.host_id))
        asked.append(beat.host_id)
    uow.hosts.asked_for_inventory(asked, now)
    uow.after_commit(partial(heartbeat_clock.observe, [b.sent_at for b in beats]))


def inventories(reports: list[HostInventory], uow: CertificateUnitOfWork) -> None:
    """What the hosts' trust stores hold, written where the digest changed."""
    uow.hosts.record_inventories(reports)
