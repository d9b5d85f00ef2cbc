"""A host as registration knows it: liveness from its heartbeats, room per pool and what it
holds from its inventory."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from directdl.contracts.host import HostState, PoolStatus, StoredTemplate
from directdl_testing.messages import heartbeat, inventory
from registration.domain.host import Host

pytestmark = pytest.mark.unit

DIGEST = "{SHA-256}" + "ab" * 32


def pools(*free: int) -> list[PoolStatus]:
    return [
        PoolStatus(pool_id=f"p{n}", capacity_bytes=10**6, free_bytes=f) for n, f in enumerate(free)
    ]


def test_room_is_per_pool_never_a_sum() -> None:
    host = Host.reported(heartbeat("h1"), inventory("h1", pools=pools(300, 500)))
    assert host.free_bytes("p0") == 300
    assert host.free_bytes() == 500, "the roomiest pool, where an agent free to choose may go"
    assert host.free_bytes("nowhere") == 0
    assert host.has_pool("p1") and not host.has_pool("nowhere")


def test_a_host_is_up_while_it_says_so_and_is_heard_from() -> None:
    beat = heartbeat("h1")
    host = Host.reported(beat)
    assert host.is_up(beat.sent_at)
    assert not host.is_up(beat.sent_at + timedelta(minutes=1))
    assert not Host.reported(heartbeat("h1", state=HostState.DOWN)).is_up(beat.sent_at)


def test_a_host_read_by_a_lagging_consumer_is_judged_as_of_its_lag() -> None:
    beat = heartbeat("h1")
    later = beat.sent_at + timedelta(minutes=1)
    host = Host.reported(beat)
    assert not host.is_up(later)
    assert replace(host, lag=timedelta(minutes=1)).is_up(later), "judged a minute ago"


def test_a_silent_host_is_listed_down() -> None:
    beat = heartbeat("h1")
    view = Host.reported(beat).view(beat.sent_at + timedelta(minutes=1))
    assert view.state is HostState.DOWN


def test_a_completed_download_is_held_at_once_replacing_an_older_copy() -> None:
    old = StoredTemplate(template_id="t1", pool_id="p0", path="/old", size=1, digest=DIGEST)
    new = StoredTemplate(template_id="t1", pool_id="p0", path="/new", size=2, digest=DIGEST)
    host = Host.reported(heartbeat("h1"), inventory("h1", templates=[old])).holding(new)
    assert host.holds("t1") and not host.holds("t2")
    assert host.templates == (new,)


def test_removed_copies_leave_only_the_pool_they_were_on() -> None:
    copies = [
        StoredTemplate(template_id=t, pool_id=p, path=f"/{p}/{t}", size=1, digest=DIGEST)
        for t, p in (("t1", "p0"), ("t1", "p1"), ("t2", "p0"))
    ]
    host = Host.reported(heartbeat("h1"), inventory("h1", templates=copies))
    assert host.copies() == 3 and host.copies("t1") == 2 and host.copies("t9") == 0
    after = host.without("p0", ["t1", "t9"])
    assert after.templates == (copies[1], copies[2])
    assert after.holds("t1") and after.copies("t1") == 1
    assert not after.without("p1", ["t1"]).holds("t1")
