"""Alembic environment for the gateway's own database."""

from api.adapters.orm import Base
from directdl.runtime.migrate import run_migrations

run_migrations(Base.metadata)
