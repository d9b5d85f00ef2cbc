"""The certificate service's own tables, on its own MetaData."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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


class HostRow(Base):
    """This service's own view of hosts, built from their heartbeats."""

    __tablename__ = "hosts"

    host_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    zone_id: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(16))
    interval_seconds: Mapped[float]
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    # From its HostInventory: the aliases its trust store holds, and that inventory's digest.
    certificates: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    inventory_digest: Mapped[str | None] = mapped_column(String(128))
    # When it was last asked for its inventory again: a host is asked at most once in a while.
    inventory_asked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OperationRow(Base):
    """One command fanned out to hosts; answered when every host has, or time is up."""

    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    host_id: Mapped[str | None] = mapped_column(String(255), doc="The one host, when named.")
    certificate_id: Mapped[str] = mapped_column(String(36), index=True)
    reply_to: Mapped[str | None] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(255))
    deadline: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    finished: Mapped[bool] = mapped_column(index=True)


class OperationHostRow(Base):
    """One host asked by an operation, and what it answered: a row each, so that recording an
    answer touches one row, not a list as long as the zone."""

    __tablename__ = "operation_hosts"

    operation_id: Mapped[str] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True
    )
    host_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), doc="WAITING, or what the host answered.")
    reason: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


store = MessageStore(Base.metadata)
settings = settings_table(Base.metadata)
