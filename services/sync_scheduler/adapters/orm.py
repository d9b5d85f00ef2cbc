"""The sync-scheduler's own tables: what it learnt from events, and each run's report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from directdl.bus.store import MessageStore
from directdl.runtime.db import UtcDateTime
from directdl.runtime.live_settings import settings_table


class Base(DeclarativeBase):
    metadata = MetaData()


class ZoneRow(Base):
    __tablename__ = "zones"

    zone_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    enabled: Mapped[bool]


class HostRow(Base):
    """A host as its heartbeats say: written in bulk, a batch of beats at a time."""

    __tablename__ = "hosts"

    host_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    zone_id: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(16))
    interval_seconds: Mapped[float]
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    # When this service last asked the host for its inventory: at most once in 3 intervals.
    inventory_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class HostInventoryRow(Base):
    """What a host's trust store holds, as its last HostInventory said. Apart from `hosts`:
    an inventory may arrive before the host's first beat, and is rewritten only when its
    digest changes, while `hosts` is rewritten at every beat."""

    __tablename__ = "host_inventories"

    host_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    digest: Mapped[str] = mapped_column(String(160), doc="the host's inventory_digest()")
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    trusted: Mapped[list[list[str]]] = mapped_column(JSON, doc="[alias, SHA-256] from the host")
    trusted_digest: Mapped[str] = mapped_column(String(64), doc="plan.digest of `trusted`")


class CertificateRow(Base):
    __tablename__ = "certificates"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    zone_id: Mapped[str] = mapped_column(String(255), index=True)
    alias: Mapped[str] = mapped_column(String(63))
    fingerprint_sha256: Mapped[str] = mapped_column(String(128))
    revoked: Mapped[bool]


class HostRevocationRow(Base):
    """A certificate revoked from one host alone: kept away from it, not from its zone."""

    __tablename__ = "host_revocations"

    certificate_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host_id: Mapped[str] = mapped_column(String(255), primary_key=True)


class RunRow(Base):
    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


store = MessageStore(Base.metadata)
settings = settings_table(Base.metadata)
