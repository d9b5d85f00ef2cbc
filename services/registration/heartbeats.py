"""The hosts queue in batches: heartbeats and inventories; host.list and the silent hosts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from functools import partial

import structlog

from directdl.contracts.host import (
    HostHeartbeat,
    HostInventory,
    HostList,
    HostState,
    ListHosts,
    RequestInventory,
)
from directdl.liveness import is_up
from registration import deploying, preparing
from registration.adapters.hosts import Known
from registration.domain.deploy import Deploy, host_gone
from registration.domain.host import needs_inventory
from registration.policy import DownloadPolicy
from registration.uow import RegistrationUnitOfWork

log = structlog.get_logger(__name__)

GIVES_UP = (*deploying.GIVES_UP, *preparing.FANS_OUT)
"""What failing over a stopped or silent host's attempts may publish."""
BEATS = (RequestInventory, *GIVES_UP)
"""What a batch of heartbeats may publish: requests for inventories, and fail-overs."""


def _now() -> datetime:
    return datetime.now(UTC)


def host_beats(
    messages: list[HostHeartbeat], uow: RegistrationUnitOfWork, policy: DownloadPolicy
) -> None:
    """Record a batch of heartbeats in one statement; tell who came Up or said it stops, ask
    for the inventories not held, and fail over the attempts of the hosts that stop."""
    # This batch says how far behind the beats are, but only once its beats are committed:
    # a host.list or a watchdog look in between would judge the last_seen stored before it
    # at a clock moved up to this batch, and in a backlog every host would look silent.
    sent_at = [beat.sent_at for beat in messages]
    uow.after_commit(lambda: uow.clock.observe(sent_at))
    beats = list({beat.host_id: beat for beat in messages}.values())  # each host's last
    firsts = {beat.host_id: beat for beat in reversed(messages)}
    ids = [beat.host_id for beat in beats]
    # Both reads before the first write: on SQLite the write takes the one writer lock, which
    # commands (template.list records its message id) wait for until the commit.
    known, held = uow.hosts.known(ids), uow.hosts.inventory_digests(ids)
    # A beat older than the one stored (redelivered, or overtaken) changes nothing.
    fresh = [b for b in beats if b.host_id not in known or known[b.host_id].last_seen < b.sent_at]
    uow.hosts.record_beats(fresh)
    for beat in fresh:
        _tell(uow, known.get(beat.host_id), firsts[beat.host_id], beat)
    _ask_inventories(uow, fresh, known, held)
    stopped = {beat.host_id for beat in fresh if beat.state is not HostState.UP}
    if stopped:
        # Stopped cleanly: their attempts need not wait for the watchdog to notice.
        fail_over(uow, policy, uow.deploys.running(on_hosts=stopped))


def _tell(
    uow: RegistrationUnitOfWork, known: Known | None, first: HostHeartbeat, last: HostHeartbeat
) -> None:
    """Log a host coming Up, or saying it stops, once, after the commit. Whether it was Up
    is judged at its first beat of the batch, by its own clock: neither a backlog nor the
    beats of one host handled together make it look like it came back. One that falls
    silent is the watchdog's to tell."""
    was_up = known is not None and is_up(
        known.state, known.last_seen, known.interval_seconds, first.sent_at
    )
    if last.state is HostState.UP and not was_up:
        told = partial(log.info, "host.up", host_id=last.host_id, zone_id=last.zone_id)
        uow.after_commit(told)
    elif was_up and last.state is not HostState.UP:
        told = partial(
            log.warning, "host.down", host_id=last.host_id, zone_id=last.zone_id, said=last.state
        )
        uow.after_commit(told)


def _ask_inventories(
    uow: RegistrationUnitOfWork,
    beats: Sequence[HostHeartbeat],
    known: dict[str, Known],
    held: dict[str, str | None],
) -> None:
    """Ask each host whose beat carries a digest other than its stored inventory's (`held`;
    none when it has none) to send it again, once in a few of its intervals."""
    # At the heartbeat clock: a host is asked once in three of its own intervals, however
    # fast a backlog of its beats is handled.
    now = uow.clock.now()
    asked = [
        beat
        for beat in beats
        if needs_inventory(beat, held.get(beat.host_id), _asked_at(known, beat.host_id), now)
    ]
    for beat in asked:
        uow.emit(
            RequestInventory(digest_seen=beat.inventory_digest),
            routing_key=RequestInventory.address(host_id=beat.host_id),
        )
    if asked:
        uow.hosts.asked_for_inventory([beat.host_id for beat in asked], now)


def _asked_at(known: dict[str, Known], host_id: str) -> datetime | None:
    seen = known.get(host_id)
    return seen.inventory_asked_at if seen is not None else None


def host_inventories(messages: list[HostInventory], uow: RegistrationUnitOfWork) -> None:
    """Keep what each host says it holds, where it is newer and says something new."""
    uow.hosts.record_inventories(messages)


def fail_silent_hosts(uow: RegistrationUnitOfWork, policy: DownloadPolicy) -> int:
    """Mark Down the hosts silent too long at the heartbeat clock (found by index, not by
    loading every host), and fail over the attempts on hosts that are not Up."""
    for silent in uow.hosts.mark_silent_down():
        told = partial(
            log.warning,
            "host.down",
            host_id=silent.host_id,
            zone_id=silent.zone_id,
            last_seen=silent.last_seen,
        )
        uow.after_commit(told)
    return fail_over(uow, policy, uow.deploys.running())


def fail_over(
    uow: RegistrationUnitOfWork, policy: DownloadPolicy, running: Collection[Deploy]
) -> int:
    """Give up the running attempts of `running` whose host is not Up; how many."""
    if not running:
        return 0
    attempts = [deploy.running_attempt for deploy in running]
    hosts = uow.hosts.by_ids({a.host_id for a in attempts if a is not None})
    now, failed = _now(), 0
    for deploy, attempt in zip(running, attempts, strict=True):
        assert attempt is not None  # what `running` returns
        why = host_gone(attempt, hosts.get(attempt.host_id), now)
        if why is not None:
            deploying.abandon(uow, policy, deploy, attempt.job_id, why)
            failed += 1
    return failed


def list_hosts(cmd: ListHosts, uow: RegistrationUnitOfWork) -> HostList:
    """Up or Down as of the heartbeat clock; only the hosts of the state asked for are read."""
    now = _now()
    views = [host.view(now) for host in uow.hosts.listed(cmd.zone_id, cmd.state)]
    # Judged again per host, an instant later: the state shown is the state filtered on.
    return HostList(items=[v for v in views if cmd.state in (None, v.state)])
