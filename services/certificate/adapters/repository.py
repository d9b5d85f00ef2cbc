"""Repositories: map rows to the domain's certificates, hosts and operations, and back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from certificate.adapters.orm import CertificateRow, HostRow, OperationRow, PlacementRow
from certificate.domain.model import Certificate, Host, Placement
from certificate.domain.operation import Operation, OperationKind, Request
from directdl.contracts.certificate import HostCertState, HostOutcome
from directdl.contracts.host import HostHeartbeat, HostState


@dataclass(frozen=True)
class CertificateFilter:
    """What cert.list selects by; None is any."""

    certificate_id: str | None = None
    zone_id: str | None = None
    alias: str | None = None
    id_prefix: str | None = None


class CertificateRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, certificate_id: str) -> Certificate | None:
        row = self.session.get(CertificateRow, certificate_id)
        return _certificate(row) if row else None

    def by_alias(self, zone_id: str, alias: str) -> Certificate | None:
        query = select(CertificateRow).where(
            CertificateRow.zone_id == zone_id, CertificateRow.alias == alias
        )
        row = self.session.scalars(query).one_or_none()
        return _certificate(row) if row else None

    def save(self, cert: Certificate) -> None:
        """Insert or update, placements included; one host's placement is only ever replaced."""
        row = self.session.get(CertificateRow, cert.id)
        if row is None:
            row = CertificateRow(id=cert.id)
            self.session.add(row)
        row.alias = cert.alias
        row.zone_id = cert.zone_id
        row.hypervisor = cert.hypervisor
        row.pem = cert.pem
        row.subject = cert.subject
        row.issuer = cert.issuer
        row.serial = cert.serial
        row.not_before = cert.not_before
        row.not_after = cert.not_after
        row.fingerprint_sha256 = cert.fingerprint_sha256
        row.revoked = cert.revoked
        row.expiry_warned_at = cert.expiry_warned_at
        row.created_at = cert.created_at
        rows = {p.host_id: p for p in row.placements}
        for placement in cert.placements:
            placed = rows.get(placement.host_id)
            if placed is None:
                placed = PlacementRow(host_id=placement.host_id)
                row.placements.append(placed)
            placed.state = placement.state.value
            placed.reason = placement.reason
            placed.updated_at = placement.updated_at
        self.session.flush()

    def delete(self, certificate_id: str) -> None:
        row = self.session.get(CertificateRow, certificate_id)
        if row is not None:
            self.session.delete(row)
            self.session.flush()

    def listing(self, where: CertificateFilter) -> list[Certificate]:
        query = select(CertificateRow).order_by(CertificateRow.zone_id, CertificateRow.alias)
        if where.certificate_id is not None:
            query = query.where(CertificateRow.id == where.certificate_id)
        if where.zone_id is not None:
            query = query.where(CertificateRow.zone_id == where.zone_id)
        if where.alias is not None:
            query = query.where(CertificateRow.alias == where.alias)
        if where.id_prefix is not None:
            query = query.where(CertificateRow.id.startswith(where.id_prefix, autoescape=True))
        return [_certificate(r) for r in self.session.scalars(query)]

    def expiring(self, before: datetime) -> list[Certificate]:
        """Unrevoked certificates that expire by `before`."""
        query = select(CertificateRow).where(
            CertificateRow.not_after <= before, CertificateRow.revoked.is_(False)
        )
        return [_certificate(r) for r in self.session.scalars(query)]


def _certificate(row: CertificateRow) -> Certificate:
    return Certificate(
        id=row.id,
        alias=row.alias,
        zone_id=row.zone_id,
        hypervisor=row.hypervisor,
        pem=row.pem,
        subject=row.subject,
        issuer=row.issuer,
        serial=row.serial,
        not_before=row.not_before,
        not_after=row.not_after,
        fingerprint_sha256=row.fingerprint_sha256,
        revoked=row.revoked,
        expiry_warned_at=row.expiry_warned_at,
        created_at=row.created_at,
        placements=tuple(
            Placement(p.host_id, HostCertState(p.state), p.reason, p.updated_at)
            for p in row.placements
        ),
    )


class HostRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, beat: HostHeartbeat) -> None:
        row = self.session.get(HostRow, beat.host_id) or HostRow(host_id=beat.host_id)
        row.zone_id = beat.zone_id
        row.state = beat.state.value
        row.interval_seconds = beat.interval_seconds
        row.last_seen = beat.sent_at
        row.certificates = [c.model_dump(mode="json") for c in beat.certificates]
        self.session.add(row)
        self.session.flush()

    def get(self, host_id: str) -> Host | None:
        row = self.session.get(HostRow, host_id)
        return _host(row) if row else None

    def knows_zone(self, zone_id: str) -> bool:
        query = select(HostRow.host_id).where(HostRow.zone_id == zone_id)
        return self.session.scalars(query).first() is not None

    def up_in_zone(self, zone_id: str, now: datetime) -> list[Host]:
        query = select(HostRow).where(HostRow.zone_id == zone_id).order_by(HostRow.host_id)
        hosts = (_host(r) for r in self.session.scalars(query))
        return [h for h in hosts if h.is_up(now)]


def _host(row: HostRow) -> Host:
    return Host(
        host_id=row.host_id,
        zone_id=row.zone_id,
        state=HostState(row.state),
        last_seen=row.last_seen,
        interval_seconds=row.interval_seconds,
        aliases=frozenset(str(c["alias"]) for c in row.certificates),
    )


class OperationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, operation_id: str) -> Operation | None:
        """Locked until commit: two hosts answering at once each see the other's answer, so
        neither is lost and the operation ends once."""
        self._lock(OperationRow.id == operation_id)
        row = self.session.get(OperationRow, operation_id)
        return _operation(row) if row else None

    def overdue(self, now: datetime) -> list[Operation]:
        """Locked until commit, as `get` is: an answer arriving meanwhile waits, then finds
        the operation ended."""
        due = (OperationRow.finished.is_(False), OperationRow.deadline < now)
        self._lock(*due)
        return [_operation(r) for r in self.session.scalars(select(OperationRow).where(*due))]

    def _lock(self, *where: ColumnElement[bool]) -> None:
        # A write, not SELECT ... FOR UPDATE: SQLite ignores that, and its driver reads outside
        # any transaction until the first write. The write takes SQLite's one writer lock, and
        # PostgreSQL's row locks, before the rows are read.
        touch = update(OperationRow).where(*where).values(finished=OperationRow.finished)
        self.session.execute(touch, execution_options={"synchronize_session": False})

    def save(self, operation: Operation) -> None:
        row = self.session.get(OperationRow, operation.id)
        if row is None:
            row = OperationRow(id=operation.id)
            self.session.add(row)
        request = operation.request
        row.kind = operation.kind.value
        row.certificate_id = operation.certificate_id
        row.host_id = request.host_id
        row.reply_to = request.reply_to
        row.correlation_id = request.correlation_id
        row.deadline = request.deadline
        row.waiting_for = list(operation.waiting_for)
        # Without updated_at: an operation's outcomes are as of its reply.
        row.outcomes = [
            o.model_dump(mode="json", exclude={"updated_at"}) for o in operation.outcomes
        ]
        row.finished = operation.finished
        self.session.flush()


def _operation(row: OperationRow) -> Operation:
    return Operation(
        id=row.id,
        kind=OperationKind(row.kind),
        certificate_id=row.certificate_id,
        request=Request(row.deadline, row.host_id, row.reply_to, row.correlation_id),
        waiting_for=tuple(row.waiting_for),
        outcomes=tuple(HostOutcome.model_validate(o) for o in row.outcomes),
        finished=row.finished,
    )
