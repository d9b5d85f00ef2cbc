"""The repository for prepares and their hosts: domain objects in, and out."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from registration.adapters.orm import PrepareHostRow, PrepareRow
from registration.domain.prepare import Prepare, PrepareHost


class PrepareRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def save(self, prepare: Prepare) -> None:
        """Add the prepare or bring its row up to date, its hosts too (their list is fixed)."""
        row = self.session.get(PrepareRow, prepare.prepare_id)
        if row is None:
            row = PrepareRow(prepare_id=prepare.prepare_id)
            self.session.add(row)
        row.template_id = prepare.template_id
        row.zone_id = prepare.zone_id
        row.pool_id = prepare.pool_id
        row.concurrency = prepare.concurrency
        row.reply_to = prepare.reply_to
        row.correlation_id = prepare.correlation_id
        row.created_at = prepare.created_at
        row.updated_at = prepare.updated_at
        rows = {h.host_id: h for h in row.hosts}
        for position, host in enumerate(prepare.hosts):
            host_row = rows.get(host.host_id)
            if host_row is None:
                host_row = PrepareHostRow(host_id=host.host_id, position=position)
                row.hosts.append(host_row)
            host_row.state = host.state
            host_row.deploy_id = host.deploy_id
            host_row.code = host.code
            host_row.message = host.message
        self.session.flush()

    def get(self, prepare_id: str) -> Prepare | None:
        row = self.session.get(PrepareRow, prepare_id)
        return _to_prepare(row) if row else None

    def for_deploy(self, deploy_id: str) -> Prepare | None:
        """The prepare one of whose hosts `deploy_id` fills, locked until the commit: two of
        its deploys ending at once would otherwise both start the same next host."""
        owner = (
            select(PrepareHostRow.prepare_id)
            .where(PrepareHostRow.deploy_id == deploy_id)
            .scalar_subquery()
        )
        self._lock(PrepareRow.prepare_id == owner)
        query = select(PrepareHostRow.prepare_id).where(PrepareHostRow.deploy_id == deploy_id)
        prepare_id = self.session.scalars(query).first()
        return self.get(prepare_id) if prepare_id is not None else None

    def _lock(self, *where: ColumnElement[bool]) -> None:
        # A write, as DeployRepository._lock does and for the same reasons.
        touch = update(PrepareRow).where(*where).values(updated_at=PrepareRow.updated_at)
        self.session.execute(touch, execution_options={"synchronize_session": False})


def _to_prepare(row: PrepareRow) -> Prepare:
    return Prepare(
        prepare_id=row.prepare_id,
        template_id=row.template_id,
        zone_id=row.zone_id,
        pool_id=row.pool_id,
        concurrency=row.concurrency,
        reply_to=row.reply_to,
        correlation_id=row.correlation_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        hosts=tuple(
            PrepareHost(
                host_id=h.host_id,
                state=h.state,
                deploy_id=h.deploy_id,
                code=h.code,
                message=h.message,
            )
            for h in row.hosts
        ),
    )
