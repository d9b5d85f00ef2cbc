"""Repositories: certificates with their placements, the hosts projection, fan-out operations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from certificate.adapters.orm import CertificateRow, HostRow, OperationRow, PlacementRow
from directdl.contracts.certificate import CertificateView, HostCertState, HostOutcome
from directdl.contracts.host import HostHeartbeat
from directdl.liveness import is_up


class CertificateRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, certificate_id: str) -> CertificateRow | None:
        return self.session.get(CertificateRow, certificate_id)

    def by_alias(self, zone_id: str, alias: str) -> CertificateRow | None:
        query = select(CertificateRow).where(
            CertificateRow.zone_id == zone_id, CertificateRow.alias == alias
        )
        return self.session.scalars(query).one_or_none()

    def add(self, row: CertificateRow) -> CertificateRow:
        self.session.add(row)
        self.session.flush()
        return row

    def delete(self, row: CertificateRow) -> None:
        self.session.delete(row)
        self.session.flush()

    def listing(self, certificate_id: str | None, zone_id: str | None) -> list[CertificateRow]:
        query = select(CertificateRow).order_by(CertificateRow.zone_id, CertificateRow.alias)
        if certificate_id is not None:
            query = query.where(CertificateRow.id == certificate_id)
        if zone_id is not None:
            query = query.where(CertificateRow.zone_id == zone_id)
        return list(self.session.scalars(query))

    def expiring(self, before: datetime) -> list[CertificateRow]:
        query = select(CertificateRow).where(
            CertificateRow.not_after <= before, CertificateRow.revoked.is_(False)
        )
        return list(self.session.scalars(query))

    def place(
        self, row: CertificateRow, host_id: str, state: str, reason: str | None, now: datetime
    ) -> None:
        placement = next((p for p in row.placements if p.host_id == host_id), None)
        if placement is None:
            placement = PlacementRow(host_id=host_id)
            row.placements.append(placement)
        placement.state = state
        placement.reason = reason
        placement.updated_at = now
        self.session.flush()


def view(row: CertificateRow) -> CertificateView:
    return CertificateView(
        id=row.id,
        alias=row.alias,
        zone_id=row.zone_id,
        hypervisor=row.hypervisor,
        subject=row.subject,
        issuer=row.issuer,
        serial=row.serial,
        not_before=row.not_before,
        not_after=row.not_after,
        fingerprint_sha256=row.fingerprint_sha256,
        revoked=row.revoked,
        created_at=row.created_at,
    )


def placements(row: CertificateRow) -> list[HostOutcome]:
    return [
        HostOutcome(
            host_id=p.host_id,
            state=HostCertState(p.state),
            reason=p.reason,
            updated_at=p.updated_at,
        )
        for p in sorted(row.placements, key=lambda p: p.host_id)
    ]


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

    def get(self, host_id: str) -> HostRow | None:
        return self.session.get(HostRow, host_id)

    def knows_zone(self, zone_id: str) -> bool:
        return (
            self.session.scalars(select(HostRow.host_id).where(HostRow.zone_id == zone_id)).first()
            is not None
        )

    def up_in_zone(self, zone_id: str, now: datetime) -> list[HostRow]:
        rows = self.session.scalars(
            select(HostRow).where(HostRow.zone_id == zone_id).order_by(HostRow.host_id)
        )
        return [r for r in rows if host_is_up(r, now)]


def host_is_up(row: HostRow, now: datetime) -> bool:
    return is_up(row.state, row.last_seen, row.interval_seconds, now)


class OperationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: OperationRow) -> OperationRow:
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, operation_id: str) -> OperationRow | None:
        return self.session.get(OperationRow, operation_id)

    def overdue(self, now: datetime) -> list[OperationRow]:
        query = select(OperationRow).where(
            OperationRow.finished.is_(False), OperationRow.deadline < now
        )
        return list(self.session.scalars(query))
