"""Alembic environment for the certificate service's own database."""

from certificate.adapters.orm import Base
from directdl.runtime.migrate import run_migrations

run_migrations(Base.metadata)
