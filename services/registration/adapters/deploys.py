"""Repositories for the host projection and for deploys with their attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from directdl.contracts.deploy import AttemptState, DeployAttempt
from directdl.contracts.host import HostHeartbeat, HostState, HostView, PoolStatus, StoredTemplate
from registration.adapters.orm import AttemptRow, DeployRow, HostRow
from registration.domain.deploy import Host


class HostRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, beat: HostHeartbeat) -> None:
        row = self.session.get(HostRow, beat.host_id) or HostRow(host_id=beat.host_id)
        row.zone_id = beat.zone_id
        row.cluster_id = beat.cluster_id
        row.state = beat.state.value
        row.interval_seconds = beat.interval_seconds
        row.last_seen = beat.sent_at
        row.pools = [p.model_dump(mode="json") for p in beat.pools]
        row.templates = [t.model_dump(mode="json") for t in beat.templates]
        self.session.add(row)
        self.session.flush()

    def add_template(self, host_id: str, stored: StoredTemplate) -> None:
        """Learn a placement from the download's outcome, before the next heartbeat says so."""
        row = self.session.get(HostRow, host_id)
        if row is None:
            return
        kept = [t for t in row.templates if t["template_id"] != stored.template_id]
        row.templates = [*kept, stored.model_dump(mode="json")]
        self.session.flush()

    def get(self, host_id: str) -> Host | None:
        row = self.session.get(HostRow, host_id)
        return _to_host(row) if row else None

    def in_zone(self, zone_id: str | None = None) -> list[Host]:
        return [_to_host(row) for row in self._rows(zone_id)]

    def views(self, zone_id: str | None, now: datetime) -> list[HostView]:
        views = []
        for row in self._rows(zone_id):
            up = _to_host(row).is_up(now)
            views.append(
                HostView(
                    host_id=row.host_id,
                    zone_id=row.zone_id,
                    cluster_id=row.cluster_id,
                    state=HostState.UP if up else HostState.DOWN,
                    last_seen=row.last_seen,
                    pools=[PoolStatus.model_validate(p) for p in row.pools],
                    templates=[StoredTemplate.model_validate(t) for t in row.templates],
                )
            )
        return views

    def _rows(self, zone_id: str | None) -> list[HostRow]:
        query = select(HostRow).order_by(HostRow.host_id)
        if zone_id is not None:
            query = query.where(HostRow.zone_id == zone_id)
        return list(self.session.scalars(query))


def _to_host(row: HostRow) -> Host:
    return Host(
        host_id=row.host_id,
        zone_id=row.zone_id,
        state=row.state,
        last_seen=row.last_seen,
        interval_seconds=row.interval_seconds,
        free_bytes=sum(int(p["free_bytes"]) for p in row.pools),
        template_ids=frozenset(t["template_id"] for t in row.templates),
        pool_ids=frozenset(p["pool_id"] for p in row.pools),
    )


class DeployRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: DeployRow) -> DeployRow:
        self.session.add(row)
        self.session.flush()
        return row

    def attempt(self, job_id: str) -> AttemptRow | None:
        return self.session.get(AttemptRow, job_id)

    def running_attempts(self) -> list[AttemptRow]:
        query = select(AttemptRow).where(AttemptRow.state == AttemptState.RUNNING)
        return list(self.session.scalars(query))

    def start_attempt(self, deploy: DeployRow, job_id: str, host_id: str, now: datetime) -> None:
        deploy.attempts.append(
            AttemptRow(job_id=job_id, host_id=host_id, state=AttemptState.RUNNING, started_at=now)
        )
        self.session.flush()


def attempt_views(deploy: DeployRow) -> list[DeployAttempt]:
    return [
        DeployAttempt(
            job_id=a.job_id,
            host_id=a.host_id,
            state=AttemptState(a.state),
            error_code=a.error_code,
            message=a.message,
            started_at=a.started_at,
            finished_at=a.finished_at if a.finished_at else None,
        )
        for a in deploy.attempts
    ]


def finish(deploy: DeployRow, state: AttemptState, outcome: dict[str, Any], now: datetime) -> None:
    deploy.state = state
    deploy.outcome = outcome
    deploy.updated_at = now
