"""Template repository: maps rows to the domain's Template and back (SQLAlchemy 2.0 style)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from directdl.contracts.template import SourceProtocol, TemplateFormat, TemplateType
from registration.adapters.orm import TemplateRow, TemplateZoneRow
from registration.domain.template import Template


@dataclass(frozen=True)
class TemplateFilter:
    zone_id: str | None = None
    template_type: TemplateType | None = None
    name: str | None = None
    keyword: str | None = None
    id_prefix: str | None = None


# Built once: every registration asks it, and building the expression cost more than running it.
_NAMES_TAKEN = select(TemplateZoneRow.zone_id).where(
    TemplateZoneRow.name == bindparam("name"),
    TemplateZoneRow.zone_id.in_(bindparam("zone_ids", expanding=True)),
    TemplateZoneRow.template_id != bindparam("except_id"),
)
# Plain inserts into the tables, without the ORM's bookkeeping.
_INSERT_TEMPLATE = insert(cast(Table, TemplateRow.__table__))
_INSERT_ZONE = insert(cast(Table, TemplateZoneRow.__table__))


class TemplateRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, template_id: str) -> Template | None:
        row = self.session.get(TemplateRow, template_id)
        return _to_domain(row) if row else None

    def names_taken(self, name: str, zone_ids: Iterable[str], except_id: str = "") -> list[str]:
        """The zones among zone_ids where another template already has this name."""
        rows = self.session.scalars(
            _NAMES_TAKEN, {"name": name, "zone_ids": list(zone_ids), "except_id": except_id}
        )
        return sorted(rows)

    def add(self, template: Template) -> None:
        # Two plain inserts rather than the ORM's unit of work, which cost more than the rest
        # of a registration; a name taken meanwhile still fails here, on the unique key.
        self.session.execute(
            _INSERT_TEMPLATE,
            {
                "id": template.id,
                "name": template.name,
                "url": template.url,
                "protocol": template.protocol.value,
                "hypervisor": template.hypervisor,
                "format": template.format.value,
                "checksum": template.checksum,
                "template_type": template.template_type.value,
                "direct_download": template.direct_download,
                "details": dict(template.details),
                "size": template.size,
                "created_at": template.created_at,
                "updated_at": template.updated_at,
            },
        )
        zones = [
            {"template_id": template.id, "zone_id": zone_id, "name": template.name}
            for zone_id in template.zone_ids
        ]
        if zones:
            self.session.execute(_INSERT_ZONE, zones)

    def update(self, template: Template) -> None:
        row = self.session.get_one(TemplateRow, template.id)
        _copy_into(row, template)
        self.session.flush()

    def record_digest(self, template_id: str, digest: str) -> str | None:
        """Record the first verified digest of a template without a checksum; return the one on
        record, which is an earlier host's when another got there first (concurrent deploys:
        the conditional update waits for theirs), or None when the template is gone."""
        self.session.execute(
            update(TemplateRow)
            .where(TemplateRow.id == template_id, TemplateRow.first_digest.is_(None))
            .values(first_digest=digest)
        )
        return self.session.scalar(
            select(TemplateRow.first_digest).where(TemplateRow.id == template_id)
        )

    def delete(self, template_id: str) -> None:
        self.session.delete(self.session.get_one(TemplateRow, template_id))
        self.session.flush()

    def page(self, where: TemplateFilter, page: int, page_size: int) -> tuple[list[Template], int]:
        query = select(TemplateRow)
        if where.zone_id is not None:
            query = query.where(
                TemplateRow.id.in_(
                    select(TemplateZoneRow.template_id).where(
                        TemplateZoneRow.zone_id == where.zone_id
                    )
                )
            )
        if where.template_type is not None:
            query = query.where(TemplateRow.template_type == where.template_type.value)
        if where.name is not None:
            query = query.where(TemplateRow.name == where.name)
        if where.keyword:
            query = query.where(TemplateRow.name.contains(where.keyword, autoescape=True))
        if where.id_prefix is not None:
            query = query.where(TemplateRow.id.startswith(where.id_prefix, autoescape=True))
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(
            query.order_by(TemplateRow.created_at, TemplateRow.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        return [_to_domain(row) for row in rows], total


def _copy_into(row: TemplateRow, template: Template) -> None:
    row.name = template.name
    row.url = template.url
    row.protocol = template.protocol.value
    row.hypervisor = template.hypervisor
    row.format = template.format.value
    row.checksum = template.checksum
    row.template_type = template.template_type.value
    row.direct_download = template.direct_download
    row.details = dict(template.details)
    row.size = template.size
    row.created_at = template.created_at
    row.updated_at = template.updated_at
    wanted = set(template.zone_ids)
    row.zones = [z for z in row.zones if z.zone_id in wanted]
    for zone in row.zones:
        zone.name = template.name
    have = {z.zone_id for z in row.zones}
    row.zones.extend(
        TemplateZoneRow(zone_id=z, name=template.name) for z in template.zone_ids if z not in have
    )


def _to_domain(row: TemplateRow) -> Template:
    return Template(
        id=row.id,
        name=row.name,
        url=row.url,
        protocol=SourceProtocol(row.protocol),
        zone_ids=tuple(sorted(z.zone_id for z in row.zones)),
        hypervisor=row.hypervisor,
        format=TemplateFormat(row.format),
        checksum=row.checksum,
        template_type=TemplateType(row.template_type),
        details=dict(row.details),
        direct_download=row.direct_download,
        size=row.size,
        first_digest=row.first_digest,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
