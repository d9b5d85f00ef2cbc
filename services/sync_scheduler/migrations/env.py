"""Alembic environment for the sync-scheduler's own database."""

from directdl.runtime.migrate import run_migrations
from sync_scheduler.adapters.orm import Base

run_migrations(Base.metadata)
