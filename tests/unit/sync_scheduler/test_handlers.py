"""Sync-scheduler handlers on the in-memory bus: projections from events, runs, zone switches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from directdl.bus.memory import InMemoryBus
from directdl.contracts import certificate as certs
from directdl.contracts import sync
from directdl.contracts.host import TrustedCertificate
from directdl_testing.messages import host_says
from sync_scheduler.adapters.orm import RunRow

from .conftest import BusFactory

pytestmark = pytest.mark.unit

FP_A = "AA:" * 31 + "AA"
FP_B = "BB:" * 31 + "BB"
FP_C = "CC:" * 31 + "CC"


def view(cid: str, alias: str, fp: str, zone: str = "zone-1", revoked: bool = False) -> Any:
    now = datetime.now(UTC)
    return certs.CertificateView(
        id=cid,
        alias=alias,
        zone_id=zone,
        hypervisor="KVM",
        subject=f"CN={alias}.example",
        issuer="CN=ca.example",
        serial="01",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
        fingerprint_sha256=fp,
        revoked=revoked,
        created_at=now,
    )


def uploaded(bus: InMemoryBus, *views: certs.CertificateView) -> None:
    for v in views:
        bus.submit(certs.CertificateUploaded(certificate=v, hosts=[]))


def beat(
    bus: InMemoryBus,
    host_id: str,
    *trusted: tuple[str, str],
    zone: str = "zone-1",
    **kw: Any,
) -> None:
    """The host's inventory of these certificates, then its heartbeat, as an agent sends
    them when its trust store changed."""
    certificates = [TrustedCertificate(alias=a, fingerprint_sha256=f) for a, f in trusted]
    bus.submit_many(host_says(host_id, zone_id=zone, certificates=certificates, **kw))


def provisions(bus: InMemoryBus) -> list[tuple[str, str]]:
    return [(b["id"], b["host_id"]) for b in bus.published("cert.provision")]


def revokes(bus: InMemoryBus) -> list[tuple[str, str, str]]:
    return [(b["id"], b["zone_id"], b["host_id"]) for b in bus.published("cert.revoke")]


def runs(bus: InMemoryBus) -> list[dict[str, Any]]:
    return bus.published("sync.run.completed")


def run_now(bus: InMemoryBus, zone_id: str | None = None) -> dict[str, Any]:
    reply = bus.call(sync.RunSync(zone_id=zone_id))
    assert reply.ok and reply.result is not None, reply
    return reply.result


def age_runs(bus: InMemoryBus, by: timedelta) -> None:
    with bus.sessions() as session:
        for row in session.scalars(select(RunRow)):
            row.started_at -= by
        session.commit()


def test_a_host_that_appears_is_synced_on_its_first_heartbeat(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A), view("b", "beta", FP_B))
    assert bus.events == [], "certificate events only feed the projections"
    beat(bus, "h1", ("alpha", FP_A))

    assert provisions(bus) == [("b", "h1")]
    [report] = runs(bus)
    assert report["trigger"] == "host"
    assert (report["hosts_checked"], report["pushed"], report["removed"]) == (1, 1, 0)


def test_a_host_already_in_sync_is_checked_and_asked_nothing(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A))
    beat(bus, "h1", ("ALPHA", FP_A.lower()))
    assert provisions(bus) == [] and revokes(bus) == []
    assert runs(bus)[0]["hosts_checked"] == 1


def test_a_second_heartbeat_of_an_up_host_does_not_run(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A))
    beat(bus, "h1")
    beat(bus, "h1")
    beat(bus, "h1")
    assert len(runs(bus)) == 1
    assert provisions(bus) == [("a", "h1")]


def test_a_host_back_from_down_is_synced_again(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A))
    beat(bus, "h1")
    beat(bus, "h1", state="Down")
    assert len(runs(bus)) == 1, "a Down host is not synced"
    beat(bus, "h1")
    assert len(runs(bus)) == 2
    assert provisions(bus) == [("a", "h1"), ("a", "h1")]


def test_a_host_back_from_silence_is_synced_again(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A))
    beat(bus, "h1", sent_at=datetime.now(UTC) - timedelta(seconds=60))
    beat(bus, "h1", sent_at=datetime.now(UTC) - timedelta(seconds=50))
    assert len(runs(bus)) == 1, "beating every few seconds: Up all along"
    beat(bus, "h1")  # after more than 3 intervals of silence
    assert [r["hosts_checked"] for r in runs(bus)] == [1, 1]
    assert provisions(bus) == [("a", "h1"), ("a", "h1")]


def test_a_revoked_certificate_still_on_a_host_is_removed(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A), view("c", "gamma", FP_C))
    beat(bus, "h1", ("alpha", FP_A), ("gamma", FP_C))
    bus.submit(
        certs.CertificateRevoked(certificate=view("c", "gamma", FP_C, revoked=True), hosts=[])
    )
    report = run_now(bus)
    assert revokes(bus) == [("c", "zone-1", "h1")]
    assert (report["pushed"], report["removed"]) == (0, 1)


def test_sync_run_replies_with_the_report_it_publishes(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A), view("b", "beta", FP_B))
    uploaded(bus, view("x", "alpha", FP_A, zone="zone-2"))
    uploaded(bus, view("c", "gamma", FP_C, revoked=True))
    beat(bus, "h1", ("alpha", FP_A), ("beta", FP_B), ("gamma", FP_C))
    beat(bus, "h2")
    beat(bus, "h3", zone="zone-2")
    beat(bus, "h4", state="Down")
    before = len(bus.events)

    report = run_now(bus)
    assert report["trigger"] == "request"
    assert report["zones"] == ["zone-1", "zone-2"]
    assert report["hosts_checked"] == 3, "the Down host is not checked"
    assert (report["pushed"], report["removed"], report["failed"]) == (3, 1, 0)
    assert report["duration_s"] >= 0
    [completed] = runs(bus)[-1:]
    assert completed == report
    new = bus.events[before:]
    assert sorted((b["id"], b["host_id"]) for k, b in new if k == "cert.provision") == [
        ("a", "h2"),
        ("b", "h2"),
        ("x", "h3"),
    ]
    assert [(b["id"], b["host_id"]) for k, b in new if k == "cert.revoke"] == [("c", "h1")]


def test_sync_run_for_one_zone(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A), view("x", "alpha", FP_A, zone="zone-2"))
    beat(bus, "h1", ("alpha", FP_A))
    beat(bus, "h2", ("alpha", FP_A), zone="zone-2")
    report = run_now(bus, "zone-2")
    assert report["zones"] == ["zone-2"] and report["hosts_checked"] == 1


def test_a_host_that_reports_the_pushed_certificate_is_in_sync(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A))
    beat(bus, "h1")
    beat(bus, "h1", ("alpha", FP_A))
    report = run_now(bus)
    assert (report["pushed"], report["removed"]) == (0, 0)
    assert provisions(bus) == [("a", "h1")]


def test_a_replaced_certificate_is_pushed(bus: InMemoryBus) -> None:
    old = view("a", "alpha", FP_A)
    uploaded(bus, old)
    beat(bus, "h1", ("alpha", FP_A))
    bus.submit(certs.CertificateDeleted(certificate=old))
    uploaded(bus, view("a2", "alpha", FP_B))
    run_now(bus)
    assert provisions(bus) == [("a2", "h1")]
    assert revokes(bus) == []


def test_a_deleted_certificate_is_no_longer_considered(bus: InMemoryBus) -> None:
    wanted, revoked = view("a", "alpha", FP_A), view("c", "gamma", FP_C, revoked=True)
    uploaded(bus, wanted)
    bus.submit(certs.CertificateRevoked(certificate=revoked, hosts=[]))
    bus.submit(certs.CertificateDeleted(certificate=wanted))
    bus.submit(certs.CertificateDeleted(certificate=revoked))
    beat(bus, "h1", ("gamma", FP_C))
    report = run_now(bus)
    assert provisions(bus) == [] and revokes(bus) == []
    assert (report["hosts_checked"], report["pushed"], report["removed"]) == (1, 0, 0)


def test_a_disabled_zone_is_left_alone_until_enabled(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A), view("x", "alpha", FP_A, zone="zone-2"))
    beat(bus, "h1", ("alpha", FP_A))
    reply = bus.call(sync.DisableZone(zone_id="zone-1"))
    assert reply.result == {"zone_id": "zone-1", "enabled": False}

    beat(bus, "h2")  # new in the disabled zone: not synced
    beat(bus, "h3", zone="zone-2")  # new in another zone: synced
    assert provisions(bus) == [("x", "h3")]
    beat(bus, "h3", ("alpha", FP_A), zone="zone-2")
    report = run_now(bus)
    assert report["zones"] == ["zone-2"] and report["hosts_checked"] == 1
    assert provisions(bus) == [("x", "h3")]

    assert bus.call(sync.EnableZone(zone_id="zone-1")).result == {
        "zone_id": "zone-1",
        "enabled": True,
    }
    report = run_now(bus)
    assert report["zones"] == ["zone-1", "zone-2"] and report["hosts_checked"] == 3
    assert provisions(bus)[-1] == ("a", "h2")
    beat(bus, "h4")
    assert provisions(bus)[-1] == ("a", "h4")


def test_a_zone_disabled_before_any_host_is_heard_stays_disabled(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A))
    bus.call(sync.DisableZone(zone_id="zone-1"))
    beat(bus, "h1")
    assert provisions(bus) == [] and runs(bus) == []


def test_zone_list_names_every_zone_heard_of_and_whether_it_is_synced(bus: InMemoryBus) -> None:
    beat(bus, "h1")
    beat(bus, "h2", zone="zone-2")
    bus.call(sync.DisableZone(zone_id="zone-2"))
    assert bus.call(sync.ListZones()).result == {
        "items": [
            {"zone_id": "zone-1", "enabled": True},
            {"zone_id": "zone-2", "enabled": False},
        ]
    }


def test_a_tick_runs_when_no_run_happened_yet(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A))
    bus.submit(sync.SyncTick())
    assert [r["trigger"] for r in runs(bus)] == ["timer"]


def test_a_tick_runs_when_the_last_run_is_older_than_half_the_interval(
    bus: InMemoryBus,
) -> None:
    uploaded(bus, view("a", "alpha", FP_A))
    beat(bus, "h1", ("alpha", FP_A))
    run_now(bus)
    age_runs(bus, timedelta(minutes=31))
    bus.submit(sync.SyncTick())
    assert [r["trigger"] for r in runs(bus)] == ["host", "request", "timer"]
    assert runs(bus)[-1]["hosts_checked"] == 1


def test_a_tick_within_half_the_interval_of_a_run_does_nothing(bus: InMemoryBus) -> None:
    bus.submit(sync.SyncTick())
    age_runs(bus, timedelta(minutes=29))
    bus.submit(sync.SyncTick())
    bus.submit(sync.SyncTick())
    assert [r["trigger"] for r in runs(bus)] == ["timer"]


def test_a_host_coming_up_does_not_put_off_the_timed_run(bus: InMemoryBus) -> None:
    # A run for one host checks that host only; the other hosts still need their timed run.
    uploaded(bus, view("a", "alpha", FP_A))
    beat(bus, "h1", ("alpha", FP_A))
    bus.submit(sync.SyncTick())
    age_runs(bus, timedelta(minutes=40))
    beat(bus, "h2", ("alpha", FP_A))
    bus.submit(sync.SyncTick())
    assert [r["trigger"] for r in runs(bus)] == ["host", "timer", "host", "timer"]


def test_a_tick_does_nothing_while_the_task_is_disabled(make_bus: BusFactory) -> None:
    bus = make_bus(0.0)
    uploaded(bus, view("a", "alpha", FP_A))
    bus.submit(sync.SyncTick())
    assert runs(bus) == [] and provisions(bus) == []
    beat(bus, "h1")
    assert provisions(bus) == [("a", "h1")], "a host coming Up is synced all the same"
    age_runs(bus, timedelta(days=1))
    bus.submit(sync.SyncTick())
    assert len(runs(bus)) == 1


def test_an_empty_run_still_reports(bus: InMemoryBus) -> None:
    report = run_now(bus)
    assert report["zones"] == [] and report["hosts_checked"] == 0
    assert runs(bus) == [report]
