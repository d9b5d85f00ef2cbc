"""The gateway's own tables, on its own MetaData."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, LargeBinary, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from directdl.bus.store import MessageStore
from directdl.runtime.db import UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    api_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # A Fernet token: the secret must be read back to check signatures, so it is encrypted,
    # not hashed, under a key that lives in the environment and never in this database.
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class JobRow(Base):
    """One async CloudStack call: its id is the message_id of the command it sent."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api: Mapped[str] = mapped_column(String(64), doc="The CloudStack API, e.g. prepareTemplate.")
    routing_key: Mapped[str] = mapped_column(String(255))
    # The command as sent, to send again under the same message_id: the inbox then answers
    # with the reply it stored, and nothing is done twice.
    command: Mapped[bytes] = mapped_column(LargeBinary)
    instance_type: Mapped[str | None] = mapped_column(String(32))
    instance_id: Mapped[str | None] = mapped_column(String(255))
    api_key: Mapped[str] = mapped_column(String(128))
    status: Mapped[int] = mapped_column(doc="CloudStack's jobstatus: 0 pending, 1 ok, 2 failed.")
    progress: Mapped[int] = mapped_column(doc="jobprocstatus: a deploy's percentage.")
    result_code: Mapped[int]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    asked_again_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


store = MessageStore(Base.metadata)
