"""The registration service's own tables, on its own MetaData."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Dialect,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from directdl.bus.store import MessageStore
from directdl.contracts.deploy import AttemptState
from directdl.contracts.download import DownloadFailure
from directdl.contracts.host import HostState
from directdl.contracts.prepare import PrepareState
from directdl.runtime.db import UtcDateTime
from directdl.runtime.live_settings import settings_table


class Base(DeclarativeBase):
    metadata = MetaData()


E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """An enum member stored as its value in a VARCHAR column: the columns and the rows stay
    what they were when they held plain strings, and a value no member has fails when read."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class TemplateRow(Base):
    __tablename__ = "templates"
    __table_args__ = (
        # For template.list's id_prefix, a LIKE 'prefix%': PostgreSQL's primary key index
        # serves one only under the C collation, a pattern_ops index under any.
        Index("ix_templates_id_prefix", "id", postgresql_ops={"id": "varchar_pattern_ops"}),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(String(2048))
    protocol: Mapped[str] = mapped_column(String(16))
    hypervisor: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(16))
    checksum: Mapped[str | None] = mapped_column(String(160))
    template_type: Mapped[str] = mapped_column(String(16), index=True)
    direct_download: Mapped[bool]
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    size: Mapped[int | None] = mapped_column(BigInteger)
    # Written once, by TemplateRepository.record_digest, never by a template update.
    first_digest: Mapped[str | None] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    zones: Mapped[list[TemplateZoneRow]] = relationship(
        back_populates="template", cascade="all, delete-orphan", lazy="selectin"
    )


class TemplateZoneRow(Base):
    """Where a template is available. The name is repeated so the database enforces
    "names are unique per zone" even under concurrent registrations."""

    __tablename__ = "template_zones"
    __table_args__ = (UniqueConstraint("zone_id", "name", name="uq_template_zone_name"),)

    template_id: Mapped[str] = mapped_column(
        ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True
    )
    zone_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))

    template: Mapped[TemplateRow] = relationship(back_populates="zones")


class HostRow(Base):
    """The registration service's view of a host's liveness, from its heartbeats (migration
    0009 moved what it holds to `host_inventories`, so that a beat rewrites a narrow row)."""

    __tablename__ = "hosts"

    host_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    zone_id: Mapped[str] = mapped_column(String(255), index=True)
    cluster_id: Mapped[str] = mapped_column(String(255))
    state: Mapped[HostState] = mapped_column(EnumText(HostState, 16))
    interval_seconds: Mapped[float]
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    # last_seen + MISSED_HEARTBEATS intervals: the watchdog finds the silent hosts by index.
    silent_after: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    # The inventory digest the last beat carried, and when the host was last asked for it.
    reported_digest: Mapped[str | None] = mapped_column(String(160))
    inventory_asked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class HostInventoryRow(Base):
    """What a host holds, from its last HostInventory and the downloads and removals seen
    since (`edited`); it may come before the host's first heartbeat, hence a table of its own."""

    __tablename__ = "host_inventories"

    host_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    pools: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    templates: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The last inventory's digest and sent_at; none while only local changes are known.
    digest: Mapped[str | None] = mapped_column(String(160))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    edited: Mapped[bool] = mapped_column(default=False)


class DeployRow(Base):
    __tablename__ = "deploys"
    __table_args__ = (  # for deploy.list's id_prefix, as on templates
        Index(
            "ix_deploys_id_prefix", "deploy_id", postgresql_ops={"deploy_id": "varchar_pattern_ops"}
        ),
    )

    deploy_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(36), index=True)
    zone_id: Mapped[str] = mapped_column(String(255))
    requested_host_id: Mapped[str | None] = mapped_column(String(255))
    requested_pool_id: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[AttemptState] = mapped_column(EnumText(AttemptState, 16), index=True)
    reply_to: Mapped[str | None] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    attempts: Mapped[list[AttemptRow]] = relationship(
        back_populates="deploy",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="AttemptRow.started_at",
    )


class AttemptRow(Base):
    """One host's try at a deploy; its job_id is the agent's job id."""

    __tablename__ = "deploy_attempts"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deploy_id: Mapped[str] = mapped_column(
        ForeignKey("deploys.deploy_id", ondelete="CASCADE"), index=True
    )
    host_id: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[AttemptState] = mapped_column(EnumText(AttemptState, 16), index=True)
    error_code: Mapped[DownloadFailure | None] = mapped_column(EnumText(DownloadFailure, 64))
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The host's last progress report (migration 0006); none yet while it waits for a worker.
    bytes_done: Mapped[int | None] = mapped_column(BigInteger)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    rate_bps: Mapped[float | None]
    progress_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    deploy: Mapped[DeployRow] = relationship(back_populates="attempts")


class PrepareRow(Base):
    """A template on its way to many hosts of a zone: one deploy per host (domain.prepare)."""

    __tablename__ = "prepares"

    prepare_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(36), index=True)
    zone_id: Mapped[str] = mapped_column(String(255))
    pool_id: Mapped[str | None] = mapped_column(String(255))
    concurrency: Mapped[int]
    reply_to: Mapped[str | None] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    hosts: Mapped[list[PrepareHostRow]] = relationship(
        back_populates="prepare",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="PrepareHostRow.position",
    )


class PrepareHostRow(Base):
    """One host of a prepare; `deploy_id` links the deploy that fills it to the prepare."""

    __tablename__ = "prepare_hosts"

    prepare_id: Mapped[str] = mapped_column(
        ForeignKey("prepares.prepare_id", ondelete="CASCADE"), primary_key=True
    )
    host_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    position: Mapped[int]
    state: Mapped[PrepareState] = mapped_column(EnumText(PrepareState, 16))
    deploy_id: Mapped[str | None] = mapped_column(String(36), index=True)
    code: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str | None] = mapped_column(Text)

    prepare: Mapped[PrepareRow] = relationship(back_populates="hosts")


store = MessageStore(Base.metadata)
settings = settings_table(Base.metadata)
