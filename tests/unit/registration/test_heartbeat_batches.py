"""The hosts queue: heartbeats in batches, inventories, and liveness at the heartbeat clock."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from structlog.testing import capture_logs

from directdl.bus.memory import InMemoryBus
from directdl.contracts.host import HostState, ListHosts, StoredTemplate
from directdl_testing.clocks import Wall
from directdl_testing.messages import heartbeat, host_says, inventory
from registration.uow import RegistrationUnitOfWork

pytestmark = pytest.mark.unit

DIGEST = "{SHA-256}" + "ab" * 32
OTHER = "{SHA-256}" + "cd" * 32


@pytest.fixture
def statements(bus: InMemoryBus) -> Iterator[list[str]]:
    """Every SQL statement the service runs, and COMMIT for each commit."""
    engine = bus.sessions.kw["bind"]
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        seen.append(args[2])

    def on_commit(_connection: Any) -> None:
        seen.append("COMMIT")

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    yield seen
    event.remove(engine, "before_cursor_execute", on_execute)
    event.remove(engine, "commit", on_commit)


def hosts(bus: InMemoryBus, state: HostState | None = None) -> dict[str, dict[str, Any]]:
    reply = bus.call(ListHosts(state=state))
    assert reply.ok and reply.result is not None
    return {h["host_id"]: h for h in reply.result["items"]}


def requests(bus: InMemoryBus) -> list[tuple[str, dict[str, Any]]]:
    return [(k, body) for k, body in bus.events if k.endswith(".inventory.request")]


def stored(template_id: str) -> StoredTemplate:
    return StoredTemplate(
        template_id=template_id, pool_id="pool-h1", path=f"/p/{template_id}", size=1, digest=DIGEST
    )


def told(logs: list[MutableMapping[str, Any]]) -> list[tuple[str, str]]:
    return [(e["event"], e["host_id"]) for e in logs if e["event"] in ("host.up", "host.down")]


def test_a_batch_of_many_hosts_is_one_upsert_and_one_commit(
    bus: InMemoryBus, statements: list[str]
) -> None:
    # Inventories are rare and beats many: a run of beats is handed over at once.
    says = sorted(
        (message for n in range(300) for message in host_says(f"h{n:03}")),
        key=lambda message: message.routing_key != "host.inventory",
    )
    with capture_logs() as logs:
        outcomes = bus.submit_many(says)

    assert {o.verdict.value for o in outcomes} == {"ack"}
    # Up to the commit; the in-memory bus then reads the outbox, as the relay would.
    handled = statements[: statements.index("COMMIT") + 1]
    assert [s.split(" (")[0].split(",")[0] for s in handled] == [
        "INSERT INTO host_inventories",
        "SELECT hosts.host_id",  # liveness before the batch, for host.up
        "SELECT host_inventories.host_id",  # the digests held, for RequestInventory
        "INSERT INTO hosts",  # the reads first: this takes SQLite's writer lock
        "COMMIT",
    ], "four statements for 300 inventories and 300 beats, and one commit"
    assert len(told(logs)) == 300, "each host told Up once"
    listed = hosts(bus)
    assert len(listed) == 300 and {h["state"] for h in listed.values()} == {"Up"}
    assert all(h["pools"] for h in listed.values()), "each inventory came before its beat"
    assert requests(bus) == [], "every beat carried the digest of the inventory held"


def test_a_beat_older_than_the_one_stored_changes_nothing(bus: InMemoryBus) -> None:
    bus.submit_many(host_says("h1"))
    latest = hosts(bus)["h1"]["last_seen"]
    with capture_logs() as logs:
        stale = heartbeat("h1", state=HostState.DOWN)
        bus.submit(stale.model_copy(update={"sent_at": stale.sent_at - timedelta(seconds=30)}))

    assert hosts(bus)["h1"]["state"] == "Up" and hosts(bus)["h1"]["last_seen"] == latest
    assert told(logs) == []


def test_a_digest_not_held_asks_for_the_inventory_at_most_once_in_three_intervals(
    bus: InMemoryBus, wall: Wall
) -> None:
    bus.submit_many(host_says("h1"))
    bus.submit(heartbeat("h1", inventory_digest=OTHER, sent_at=wall()))
    assert requests(bus) == [("host.h1.inventory.request", {"digest_seen": OTHER})]

    wall.advance(5)  # one interval: asked lately
    bus.submit(heartbeat("h1", inventory_digest=OTHER, sent_at=wall()))
    assert len(requests(bus)) == 1
    wall.advance(10)  # three intervals since it was asked
    bus.submit(heartbeat("h1", inventory_digest=OTHER, sent_at=wall()))
    assert len(requests(bus)) == 2


def test_a_host_never_seen_is_asked_at_once_and_an_answer_stops_the_asking(
    bus: InMemoryBus, wall: Wall
) -> None:
    bus.submit(heartbeat("h9"))
    [(key, body)] = requests(bus)
    assert key == "host.h9.inventory.request" and body["digest_seen"] == inventory("h9").digest
    assert hosts(bus)["h9"]["pools"] == [], "no pools until its inventory comes"

    bus.submit(inventory("h9", sent_at=wall()))
    wall.advance(60)
    bus.submit(heartbeat("h9", sent_at=wall()))
    assert len(requests(bus)) == 1
    assert hosts(bus)["h9"]["pools"][0]["pool_id"] == "pool-h9"


def test_an_inventory_older_than_the_one_stored_is_ignored(bus: InMemoryBus) -> None:
    newer = inventory("h1", templates=[stored("t1")])
    bus.submit(newer)
    bus.submit(heartbeat("h1", inventory_digest=newer.digest))
    bus.submit(inventory("h1", templates=[], sent_at=newer.sent_at - timedelta(seconds=10)))

    assert [t["template_id"] for t in hosts(bus)["h1"]["templates"]] == ["t1"]
    assert requests(bus) == []


def test_a_download_recorded_stays_until_a_newer_inventory_even_one_of_the_same_digest(
    bus: InMemoryBus,
) -> None:
    """Registration records a download before the host's inventory says so; an inventory
    newer than the one held replaces it, whatever its digest: the host knows best."""
    first = inventory("h1")
    bus.submit_many([first, heartbeat("h1", inventory_digest=first.digest)])
    with RegistrationUnitOfWork(bus.sessions) as uow:
        host = uow.hosts.get("h1")
        assert host is not None
        uow.hosts.save_holdings(host.holding(stored("t9")))
        uow.commit()
    bus.submit(first)  # redelivered: not newer
    bus.submit(heartbeat("h1", inventory_digest=first.digest))
    assert [t["template_id"] for t in hosts(bus)["h1"]["templates"]] == ["t9"]
    assert requests(bus) == [], "the digest held is still the host's own"

    bus.submit(inventory("h1"))  # newer, the same digest: it never stored t9 after all
    assert hosts(bus)["h1"]["templates"] == []


def test_a_backlog_of_beats_makes_no_host_down_and_caught_up_the_silent_one_is(
    bus: InMemoryBus, wall: Wall
) -> None:
    start = wall()
    bus.submit_many([*host_says("h1", sent_at=start), *host_says("h2", sent_at=start)])
    # The consumer stops for a minute; h1 goes on beating every 5 s, h2 stops.
    wall.advance(60)
    backlog = [heartbeat("h1", sent_at=start + timedelta(seconds=s)) for s in range(5, 61, 5)]
    with capture_logs() as logs:
        bus.submit_many(backlog[:2])  # the first of the backlog: 50 s behind
        bus.tick("watchdog")
        behind = hosts(bus)
        bus.submit_many(backlog[2:])  # caught up
        bus.tick("watchdog")
        caught_up = hosts(bus)

    assert {h: v["state"] for h, v in behind.items()} == {"h1": "Up", "h2": "Up"}
    assert {h: v["state"] for h, v in caught_up.items()} == {"h1": "Up", "h2": "Down"}
    assert told(logs) == [("host.down", "h2")]
    assert list(hosts(bus, HostState.DOWN)) == ["h2"] and list(hosts(bus, HostState.UP)) == ["h1"]


def test_a_host_that_says_it_stops_is_down_at_once_whatever_the_lag(
    bus: InMemoryBus, wall: Wall
) -> None:
    bus.submit_many(host_says("h1"))
    wall.advance(60)
    bus.submit(heartbeat("h1", state=HostState.DOWN))
    assert hosts(bus)["h1"]["state"] == "Down"
