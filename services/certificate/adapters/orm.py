"""The certificate service's own tables, on its own MetaData."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from directdl.bus.store import MessageStore
from directdl.runtime.db import UtcDateTime
from directdl.runtime.live_settings import settings_table


class Base(DeclarativeBase):
    metadata = MetaData()


class CertificateRow(Base):
    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("zone_id", "alias", name="uq_certificate_zone_alias"),
        # For cert.list's id_prefix, a LIKE 'prefix%': PostgreSQL's primary key index serves
        # one only under the C collation, a pattern_ops index under any.
        Index("ix_certificates_id_prefix", "id", postgresql_ops={"id": "varchar_pattern_ops"}),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alias: Mapped[str] = mapped_column(String(63))
    zone_id: Mapped[str] = mapped_column(String(255), index=True)
    hypervisor: Mapped[str] = mapped_column(String(32))
    pem: Mapped[str] = mapped_column(Text, doc="Re-serialised from the parsed certificate.")
    subject: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    serial: Mapped[str] = mapped_column(String(128))
    not_before: Mapped[datetime] = mapped_column(UtcDateTime)
    not_after: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    fingerprint_sha256: Mapped[str] = mapped_column(String(128))
    revoked: Mapped[bool]
    expiry_warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    placements: Mapped[list[PlacementRow]] = relationship(
        back_populates="certificate", cascade="all, delete-orphan", lazy="selectin"
    )


class PlacementRow(Base):
    """What a host answered about a certificate: the truth, not what was asked of it."""

    __tablename__ = "placements"

    certificate_id: Mapped[str] = mapped_column(
        ForeignKey("certificates.id", ondelete="CASCADE"), primary_key=True
    )
    host_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    certificate: Mapped[CertificateRow] = relationship(back_populates="placements")


class HostRow(Base):
    """This service's own view of hosts, built from their heartbeats."""

    __tablename__ = "hosts"

    host_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    zone_id: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(16))
    interval_seconds: Mapped[float]
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    certificates: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class OperationRow(Base):
    """One command fanned out to hosts; answered when every host has, or time is up."""

    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    host_id: Mapped[str | None] = mapped_column(String(255), doc="The one host, when named.")
    certificate_id: Mapped[str] = mapped_column(String(36), index=True)
    reply_to: Mapped[str | None] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(255))
    waiting_for: Mapped[list[str]] = mapped_column(JSON)
    outcomes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    deadline: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    finished: Mapped[bool] = mapped_column(index=True)


store = MessageStore(Base.metadata)
settings = settings_table(Base.metadata)
