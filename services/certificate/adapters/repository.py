"""The certificates repository: map rows to the domain's certificates and placements, and back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from certificate.adapters.orm import CertificateRow, PlacementRow
from certificate.domain.model import Certificate, Placement
from certificate.domain.operation import HostAnswer
from directdl.contracts.certificate import HostCertState
from directdl.runtime.upsert import Upsert

PLACEMENTS = cast(Table, PlacementRow.__table__)
_PLACE = Upsert(PLACEMENTS, ("certificate_id", "host_id"), ("state", "reason", "updated_at"))


@dataclass(frozen=True)
class CertificateFilter:
    """What cert.list selects by; None is any."""

    certificate_id: str | None = None
    zone_id: str | None = None
    alias: str | None = None
    id_prefix: str | None = None


class CertificateRepository:
    """Placements are read and written with Core, and a save writes only those that changed
    since they were read: a zone's thousand placements are not rewritten at each step."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._read: dict[str, frozenset[Placement]] = {}

    def get(self, certificate_id: str) -> Certificate | None:
        row = self.session.get(CertificateRow, certificate_id)
        return self._certificates([row])[0] if row else None

    def by_alias(self, zone_id: str, alias: str) -> Certificate | None:
        query = select(CertificateRow).where(
            CertificateRow.zone_id == zone_id, CertificateRow.alias == alias
        )
        row = self.session.scalars(query).one_or_none()
        return self._certificates([row])[0] if row else None

    def save(self, cert: Certificate) -> None:
        """Insert or update, and the placements that changed; one host's placement is only
        ever replaced."""
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
        self.session.flush()
        changed = set(cert.placements) - self._read.get(cert.id, frozenset())
        rows = [
            {
                "certificate_id": cert.id,
                "host_id": p.host_id,
                "state": p.state.value,
                "reason": p.reason,
                "updated_at": p.updated_at,
            }
            for p in cert.placements
            if p in changed
        ]
        _PLACE(self.session, rows)
        self._read[cert.id] = frozenset(cert.placements)

    def place_answers(self, answers: Sequence[HostAnswer], now: datetime) -> None:
        """Each host's placement follows what it answered, in one statement, even after its
        operation has ended; an answer naming no stored certificate places nothing."""
        named = {a.certificate_id for a in answers}
        known = set(
            self.session.scalars(select(CertificateRow.id).where(CertificateRow.id.in_(named)))
        )
        rows = [
            {
                "certificate_id": a.certificate_id,
                "host_id": a.host_id,
                "state": a.state.value,
                "reason": a.reason,
                "updated_at": now,
            }
            for a in answers
            if a.certificate_id in known
        ]
        _PLACE(self.session, rows)

    def delete(self, certificate_id: str) -> None:
        """Its placements go with it (ON DELETE CASCADE)."""
        row = self.session.get(CertificateRow, certificate_id)
        if row is not None:
            self.session.delete(row)
            self.session.flush()
        self._read.pop(certificate_id, None)

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
        return self._certificates(list(self.session.scalars(query)))

    def expiring(self, before: datetime) -> list[Certificate]:
        """Unrevoked certificates that expire by `before`."""
        query = select(CertificateRow).where(
            CertificateRow.not_after <= before, CertificateRow.revoked.is_(False)
        )
        return self._certificates(list(self.session.scalars(query)))

    def _certificates(self, rows: list[CertificateRow]) -> list[Certificate]:
        """The certificates of these rows, their placements read in one query."""
        placed: dict[str, list[Placement]] = {r.id: [] for r in rows}
        if rows:
            query = select(PLACEMENTS).where(PLACEMENTS.c.certificate_id.in_(placed))
            for p in self.session.execute(query).mappings():
                placed[p["certificate_id"]].append(
                    Placement(p["host_id"], HostCertState(p["state"]), p["reason"], p["updated_at"])
                )
        for certificate_id, placements in placed.items():
            self._read[certificate_id] = frozenset(placements)
        return [_certificate(r, tuple(placed[r.id])) for r in rows]


def _certificate(row: CertificateRow, placements: tuple[Placement, ...]) -> Certificate:
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
        placements=placements,
    )
