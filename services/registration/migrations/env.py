"""Alembic environment for the registration service's own database."""

from directdl.runtime.migrate import run_migrations
from registration.adapters.orm import Base

run_migrations(Base.metadata)
