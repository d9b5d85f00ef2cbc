"""The sync-scheduler's projections of certificates, zones and runs, read in bulk: a run makes a
handful of queries, plus one for each host whose trust store differs from what its zone wants."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from directdl.contracts.certificate import CertificateView
from sync_scheduler.adapters.orm import CertificateRow, HostRevocationRow, RunRow, ZoneRow
from sync_scheduler.domain.plan import Certificate


class Projections:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record_certificate(self, view: CertificateView) -> None:
        row = self.session.get(CertificateRow, view.id) or CertificateRow(id=view.id)
        row.zone_id = view.zone_id
        row.alias = view.alias
        row.fingerprint_sha256 = view.fingerprint_sha256
        row.revoked = view.revoked
        self.session.add(row)
        self.session.flush()

    def forget_certificate(self, certificate_id: str) -> None:
        self.session.execute(delete(CertificateRow).where(CertificateRow.id == certificate_id))
        self.allow_everywhere(certificate_id)

    def hold_back(self, certificate_id: str, host_id: str) -> None:
        if self.session.get(HostRevocationRow, (certificate_id, host_id)) is None:
            self.session.add(HostRevocationRow(certificate_id=certificate_id, host_id=host_id))
            self.session.flush()

    def allow(self, certificate_id: str, host_id: str) -> None:
        self.session.execute(
            delete(HostRevocationRow).where(
                HostRevocationRow.certificate_id == certificate_id,
                HostRevocationRow.host_id == host_id,
            )
        )

    def allow_everywhere(self, certificate_id: str) -> None:
        self.session.execute(
            delete(HostRevocationRow).where(HostRevocationRow.certificate_id == certificate_id)
        )

    def held_back(self) -> dict[str, set[str]]:
        """host -> certificates revoked from it alone (few: read whole)."""
        found: dict[str, set[str]] = {}
        for certificate_id, host_id in self.session.execute(
            select(HostRevocationRow.certificate_id, HostRevocationRow.host_id)
        ):
            found.setdefault(host_id, set()).add(certificate_id)
        return found

    def set_zone(self, zone_id: str, enabled: bool) -> None:
        row = self.session.get(ZoneRow, zone_id) or ZoneRow(zone_id=zone_id)
        row.enabled = enabled
        self.session.add(row)
        self.session.flush()

    def zones(self) -> list[tuple[str, bool]]:
        """Every zone heard of, by id, with whether it is in sync runs."""
        return [
            (row.zone_id, row.enabled)
            for row in self.session.scalars(select(ZoneRow).order_by(ZoneRow.zone_id))
        ]

    def enabled_zones(self) -> set[str]:
        return set(self.session.scalars(select(ZoneRow.zone_id).where(ZoneRow.enabled.is_(True))))

    def certificates(self) -> list[Certificate]:
        columns = (
            CertificateRow.id,
            CertificateRow.zone_id,
            CertificateRow.alias,
            CertificateRow.fingerprint_sha256,
            CertificateRow.revoked,
        )
        return [Certificate(*row) for row in self.session.execute(select(*columns))]

    def add_run(self, run_id: str, started_at: datetime, report: dict[str, object]) -> None:
        self.session.add(RunRow(run_id=run_id, started_at=started_at, report=report))

    def last_run_started(self, trigger: str) -> datetime | None:
        return self.session.scalar(
            select(RunRow.started_at)
            .where(RunRow.report["trigger"].as_string() == trigger)
            .order_by(RunRow.started_at.desc())
            .limit(1)
        )
