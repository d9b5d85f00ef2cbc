"""Host answers in batches: recorded per host, one reply per operation, late and forged
answers ignored, and deadlines judged at the answers read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from certificate.adapters.orm import OperationHostRow
from directdl.bus.memory import InMemoryBus
from directdl.contracts import certificate as msg
from directdl.contracts.host import TrustedCertificate
from directdl_testing.certs import make_self_signed
from directdl_testing.messages import heartbeat, host_says

from .conftest import Clock, Tick

pytestmark = pytest.mark.unit

PEM = make_self_signed("repo.example", ["DNS:repo.example"])[0].decode()
HOSTS = ("h1", "h2", "h3")


def installs(bus: InMemoryBus) -> dict[str, dict[str, Any]]:
    return {key.split(".")[1]: body for key, body in bus.events if key.endswith(".cert.install")}


def installed(host_id: str, install: dict[str, Any], **fields: Any) -> msg.CertificateInstalled:
    report = {
        "operation_id": install["operation_id"],
        "certificate_id": install["certificate_id"],
        "host_id": host_id,
        "alias": install["alias"],
        "fingerprint_sha256": "AB",
        "outcome": "installed",
    }
    return msg.CertificateInstalled(**(report | fields))


def failed(host_id: str, install: dict[str, Any], reason: str) -> msg.CertificateFailed:
    report = {k: install[k] for k in ("operation_id", "certificate_id", "alias")}
    return msg.CertificateFailed(**report, host_id=host_id, reason=reason)


def upload_to_zone(bus: InMemoryBus, *hosts: str) -> str:
    for host_id in hosts:
        bus.submit_many(host_says(host_id))
    command = msg.UploadCertificate(
        name="repo", zone_id="zone-1", hypervisor="KVM", certificate=PEM
    )
    return bus.submit(command)


def states(bus: InMemoryBus, correlation: str) -> list[tuple[str, str, str | None]]:
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.result is not None, "answered"
    return [(h["host_id"], h["state"], h.get("reason")) for h in reply.result["hosts"]]


def test_a_batch_of_answers_is_recorded_per_host_and_answered_once(bus: InMemoryBus) -> None:
    correlation = upload_to_zone(bus, *HOSTS)
    asked = installs(bus)

    bus.submit_many([installed("h1", asked["h1"]), installed("h2", asked["h2"])])
    assert bus.reply_for(correlation) is None, "h3 has not answered"
    bus.submit_many([failed("h3", asked["h3"], "keytool said no"), installed("h1", asked["h1"])])

    assert states(bus, correlation) == [
        ("h1", "UPLOADED", None),
        ("h2", "UPLOADED", None),
        ("h3", "FAILED", "keytool said no"),
    ]
    [event] = bus.published("cert.uploaded")
    assert [h["state"] for h in event["hosts"]] == ["UPLOADED", "UPLOADED", "FAILED"]
    with bus.sessions() as session:
        rows = session.scalars(select(OperationHostRow).order_by(OperationHostRow.host_id)).all()
    assert [(r.host_id, r.state) for r in rows] == [
        ("h1", "UPLOADED"),
        ("h2", "UPLOADED"),
        ("h3", "FAILED"),
    ]


def test_every_answer_in_one_batch_ends_the_operation_once(bus: InMemoryBus) -> None:
    correlation = upload_to_zone(bus, *HOSTS)
    asked = installs(bus)

    outcomes = bus.submit_many([installed(h, asked[h]) for h in HOSTS] * 2)

    assert len(outcomes) == 6
    assert [s for _, s, _ in states(bus, correlation)] == ["UPLOADED"] * 3
    assert len(bus.published("cert.uploaded")) == 1
    bus.submit_many([failed("h2", asked["h2"], "too late to count")])
    assert bus.reply_for(correlation) is None and len(bus.published("cert.uploaded")) == 1
    listed = bus.call(msg.ListCertificates(list_hosts=True)).result
    assert listed is not None
    # The placement follows what the host last said it did; the operation ended as it was.
    assert [h["state"] for h in listed["items"][0]["hosts"]] == ["UPLOADED", "FAILED", "UPLOADED"]


def test_an_answer_for_another_operation_or_certificate_changes_nothing(bus: InMemoryBus) -> None:
    for host_id in ("h1", "h2"):
        bus.submit_many(host_says(host_id))
    one = msg.UploadCertificate(
        name="repo", zone_id="zone-1", hypervisor="KVM", certificate=PEM, host_id="h1"
    )
    correlation = bus.submit(one)
    install = installs(bus)["h1"]

    bus.submit_many(
        [
            installed("h2", install),  # h2 was not asked
            installed("h1", install, certificate_id="cert-of-another"),
            installed("h1", install, operation_id="no-such-operation"),
        ]
    )
    assert bus.reply_for(correlation) is None
    bus.submit_many([installed("h1", install)])

    assert states(bus, correlation) == [("h1", "UPLOADED", None)]


def test_a_host_whose_answer_is_queued_past_the_deadline_is_not_failed(
    bus: InMemoryBus, clock: Clock, tick: Tick
) -> None:
    correlation = upload_to_zone(bus, "h1", "h2")
    asked = installs(bus)
    answered = clock.now + timedelta(seconds=2)
    bus.submit_many([installed("h1", asked["h1"], answered_at=answered)])

    # The consumer falls behind: 40 s on, it reads an answer h2 gave 38 s ago, in time.
    clock.advance(seconds=40)
    bus.submit_many([installed("h1", asked["h1"], answered_at=answered)])
    tick("late-answers")
    assert bus.reply_for(correlation) is None, "judged at the answers read, h2 is not late"
    bus.submit_many([installed("h2", asked["h2"], answered_at=answered)])

    assert [s for _, s, _ in states(bus, correlation)] == ["UPLOADED", "UPLOADED"]


def test_once_the_answers_are_read_a_silent_host_is_failed(
    bus: InMemoryBus, clock: Clock, tick: Tick
) -> None:
    correlation = upload_to_zone(bus, "h1", "h2")
    asked = installs(bus)
    clock.advance(seconds=40)
    # Caught up: what h1 answered just now is read just now.
    bus.submit_many([installed("h1", asked["h1"], answered_at=clock.now)])
    tick("late-answers")

    assert states(bus, correlation) == [
        ("h1", "UPLOADED", None),
        ("h2", "FAILED", "no answer within 30 s"),
    ]


def test_a_zone_whose_beats_wait_in_the_queue_is_not_empty(bus: InMemoryBus, clock: Clock) -> None:
    # The heartbeats read now were sent a minute ago; newer ones wait in the queue.
    behind = clock.now - timedelta(minutes=1)
    bus.submit_many([m for h in ("h1", "h2") for m in host_says(h, sent_at=behind)])

    correlation = bus.submit(
        msg.UploadCertificate(name="repo", zone_id="zone-1", hypervisor="KVM", certificate=PEM)
    )

    assert sorted(installs(bus)) == ["h1", "h2"], "judged at the beats read, both are Up"
    assert bus.reply_for(correlation) is None


def test_a_beat_with_another_digest_asks_for_the_inventory_once_per_three_intervals(
    bus: InMemoryBus, clock: Clock
) -> None:
    held = [TrustedCertificate(alias="repo", fingerprint_sha256="AB")]
    [listed, beat] = host_says("h1", certificates=held)
    bus.submit_many([listed, beat])
    assert bus.published("host.*.inventory.request") == []

    stale = heartbeat("h1")  # the host's store changed; its inventory got lost
    for _ in range(3):
        bus.submit_many([stale.model_copy(update={"sent_at": clock.now})])
        clock.advance(seconds=5)
    [asked] = bus.published("host.h1.inventory.request")
    assert asked["digest_seen"] == stale.inventory_digest

    clock.advance(seconds=1)
    bus.submit_many([stale.model_copy(update={"sent_at": clock.now})])
    assert len(bus.published("host.h1.inventory.request")) == 2


def test_a_host_heard_beating_before_its_inventory_is_asked_for_it(
    bus: InMemoryBus, clock: Clock
) -> None:
    # The service started afresh: the agents sent their inventories long ago, to no one.
    bus.submit_many([heartbeat("h1"), heartbeat("h2")])
    assert len(bus.published("host.*.inventory.request")) == 2

    clock.advance(seconds=16)  # past the 3 intervals between two requests
    bus.submit_many([*host_says("h1"), heartbeat("h2")])

    assert len(bus.published("host.h1.inventory.request")) == 1, "h1's digest now matches"
    assert len(bus.published("host.h2.inventory.request")) == 2
