"""The repositories give back the domain objects they were given, enums and placements included."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from certificate.adapters.orm import Base
from certificate.domain import operation
from certificate.domain.model import Certificate
from certificate.domain.operation import OperationKind, Request
from certificate.uow import CertificateUnitOfWork
from directdl.contracts.certificate import HostCertState
from directdl.contracts.host import HostState, TrustedCertificate
from directdl.runtime.db import session_factory
from directdl_testing.memory import memory_engine
from directdl_testing.messages import heartbeat, inventory

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def uow() -> Iterator[CertificateUnitOfWork]:
    with CertificateUnitOfWork(session_factory(memory_engine(Base.metadata))) as work:
        yield work


def a_certificate() -> Certificate:
    return Certificate(
        id="cert-1",
        alias="repo",
        zone_id="zone-1",
        pem="PEM",
        subject="CN=repo.example",
        issuer="CN=repo.example",
        serial="1A",
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=10),
        fingerprint_sha256="AB",
        created_at=NOW,
    )


def test_a_certificate_and_its_placements_round_trip(uow: CertificateUnitOfWork) -> None:
    cert = a_certificate().placed("h1", HostCertState.FAILED, "no", NOW)
    uow.certificates.save(cert)
    cert = cert.placed("h1", HostCertState.UPLOADED, None, NOW).placed(
        "h2", HostCertState.REVOKED, None, NOW
    )
    uow.certificates.save(cert)
    uow.commit()

    stored = uow.certificates.by_alias("zone-1", "repo")
    assert stored is not None
    assert sorted(stored.placements, key=lambda p: p.host_id) == sorted(
        cert.placements, key=lambda p: p.host_id
    )
    assert replace(stored, placements=()) == replace(cert, placements=())
    assert uow.certificates.expiring(NOW + timedelta(days=11)) == [stored]
    uow.certificates.delete(cert.id)
    assert uow.certificates.get(cert.id) is None


def test_an_operation_round_trips_with_its_kind_and_outcomes(uow: CertificateUnitOfWork) -> None:
    request = Request(NOW + timedelta(seconds=30), "h1", "caller", "c-1")
    started = operation.revoke(a_certificate(), [], request)
    assert started.operation is not None
    uow.operations.save(started.operation)

    stored = uow.operations.get(started.operation.id)

    assert stored == started.operation
    assert stored.kind is OperationKind.REVOKE and stored.finished
    assert uow.operations.overdue(NOW + timedelta(minutes=1)) == []


def test_only_unfinished_operations_past_their_deadline_are_overdue(
    uow: CertificateUnitOfWork,
) -> None:
    request = Request(NOW + timedelta(seconds=30))
    waiting = operation.upload(a_certificate(), [], request)
    assert waiting.operation is not None
    asked = operation.start(OperationKind.UPLOAD, a_certificate(), ["h1"], request).operation
    assert asked is not None
    uow.operations.save(waiting.operation)
    uow.operations.save(asked)

    assert uow.operations.overdue(NOW + timedelta(seconds=29)) == []
    assert uow.operations.overdue(NOW + timedelta(seconds=31)) == [asked]


def test_hosts_are_read_with_their_state_and_what_their_store_holds(
    uow: CertificateUnitOfWork,
) -> None:
    held = [TrustedCertificate(alias="repo", fingerprint_sha256="AB")]
    uow.hosts.record_inventories([inventory(h, certificates=held) for h in ("h1", "h2")])
    uow.hosts.record_beats(
        [heartbeat("h1", sent_at=NOW), heartbeat("h2", state=HostState.DOWN, sent_at=NOW)]
    )

    [up] = uow.hosts.up_in_zone("zone-1", NOW)
    down = uow.hosts.get("h2")

    assert up.host_id == "h1" and up.state is HostState.UP and up.aliases == {"repo"}
    assert down is not None and down.state is HostState.DOWN and not down.is_up(NOW)
    assert uow.hosts.knows_zone("zone-1") and not uow.hosts.knows_zone("zone-2")


def test_a_stale_beat_changes_nothing_and_the_later_of_two_in_a_batch_wins(
    uow: CertificateUnitOfWork,
) -> None:
    later = NOW + timedelta(seconds=5)
    uow.hosts.record_beats([heartbeat("h1", sent_at=later), heartbeat("h2", sent_at=NOW)])
    uow.hosts.record_beats(
        [
            heartbeat("h1", sent_at=NOW, state=HostState.DOWN),  # redelivered, older
            heartbeat("h2", sent_at=NOW + timedelta(seconds=1)),
            heartbeat("h2", sent_at=later, interval_seconds=7),
        ]
    )
    uow.session.expire_all()

    h1, h2 = uow.hosts.get("h1"), uow.hosts.get("h2")
    assert h1 is not None and (h1.state, h1.last_seen) == (HostState.UP, later)
    assert h2 is not None and (h2.last_seen, h2.interval_seconds) == (later, 7)


def test_an_inventory_is_written_only_when_its_digest_changed_and_a_beat_keeps_it(
    uow: CertificateUnitOfWork,
) -> None:
    held = [TrustedCertificate(alias="repo", fingerprint_sha256="AB")]
    uow.hosts.record_inventories([inventory("h1")])
    # Known from its inventory alone, a host is not Up: it has not been heard beating.
    assert uow.hosts.up_in_zone("zone-1", NOW) == []
    uow.hosts.record_beats([heartbeat("h1", sent_at=NOW)])
    uow.hosts.record_inventories([inventory("h1", certificates=held)])
    uow.session.expire_all()
    # Same digest, other contents: proof that an unchanged digest is not written.
    uow.hosts.record_inventories(
        [inventory("h1", digest=inventory("h1", certificates=held).digest)]
    )
    uow.session.expire_all()

    [h1] = uow.hosts.up_in_zone("zone-1", NOW)
    assert h1.aliases == {"repo"}
    assert uow.hosts.inventoried(["h1"])["h1"].digest == inventory("h1", certificates=held).digest
