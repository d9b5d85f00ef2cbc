"""The sync-scheduler's projections, read in bulk: a run makes a handful of queries, plus one
for each host whose trust store differs from what its zone wants."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from directdl.contracts.certificate import CertificateView
from directdl.contracts.host import HostHeartbeat, HostState
from directdl.liveness import is_up
from sync_scheduler.adapters.orm import (
    CertificateRow,
    HostRevocationRow,
    HostRow,
    RunRow,
    ZoneRow,
)
from sync_scheduler.domain.plan import Certificate, Host, digest


class Projections:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record_host(self, beat: HostHeartbeat) -> bool:
        """Store what the host says; True when it is newly Up (new, or back from Down)."""
        row = self.session.get(HostRow, beat.host_id)
        was_up = row is not None and is_up(
            row.state, row.last_seen, row.interval_seconds, beat.sent_at
        )
        if row is None:
            row = HostRow(host_id=beat.host_id)
            self.session.add(row)
        row.zone_id = beat.zone_id
        row.state = beat.state.value
        row.interval_seconds = beat.interval_seconds
        row.last_seen = beat.sent_at
        row.trusted = [[c.alias, c.fingerprint_sha256] for c in beat.certificates]
        row.trusted_digest = digest((c.alias, c.fingerprint_sha256) for c in beat.certificates)
        if self.session.get(ZoneRow, beat.zone_id) is None:
            self.session.add(ZoneRow(zone_id=beat.zone_id, enabled=True))
        self.session.flush()
        return beat.state is HostState.UP and not was_up

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

    def enabled_zones(self) -> set[str]:
        return set(self.session.scalars(select(ZoneRow.zone_id).where(ZoneRow.enabled.is_(True))))

    def up_hosts(self, now: datetime, host_id: str | None = None) -> list[Host]:
        # Not `trusted`: a host's entries are read only if its digest differs from its zone's.
        query = select(
            HostRow.host_id,
            HostRow.zone_id,
            HostRow.state,
            HostRow.last_seen,
            HostRow.interval_seconds,
            HostRow.trusted_digest,
        )
        if host_id is not None:
            query = query.where(HostRow.host_id == host_id)
        return [
            Host(row.host_id, row.zone_id, row.trusted_digest, partial(self.trusted, row.host_id))
            for row in self.session.execute(query)
            if is_up(row.state, row.last_seen, row.interval_seconds, now)
        ]

    def trusted(self, host_id: str) -> list[list[str]]:
        return self.session.scalar(select(HostRow.trusted).where(HostRow.host_id == host_id)) or []

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
