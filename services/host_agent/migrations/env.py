"""Alembic environment for a host agent's own database."""

from directdl.runtime.migrate import run_migrations
from host_agent.adapters.orm import Base

run_migrations(Base.metadata)
