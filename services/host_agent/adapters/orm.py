"""The host agent's own tables, on its own MetaData."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from directdl.bus.store import MessageStore
from directdl.runtime.db import UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class JobRow(Base):
    """A download the agent accepted. Recorded before the ack, so a crash loses none."""

    __tablename__ = "jobs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    command: Mapped[dict[str, Any]] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    validator: Mapped[str | None] = mapped_column(
        String(512), doc="The source's ETag or Last-Modified that the partial file came with"
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StoredTemplateRow(Base):
    """A verified template file on the pool, under its final name."""

    __tablename__ = "stored_templates"

    template_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pool_id: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(160), doc="{SHA-256}hex of the downloaded bytes")
    verified_digest: Mapped[str] = mapped_column(String(160), doc="{ALGO}hex that was checked")
    image_digest: Mapped[str | None] = mapped_column(
        String(160), doc="{SHA-256}hex of the file when it was decompressed"
    )
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class CachePolicyRow(Base):
    """The pool's cache limits as registration last sent them; one row."""

    __tablename__ = "cache_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    max_bytes: Mapped[int] = mapped_column(BigInteger)
    max_age_s: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


store = MessageStore(Base.metadata)
