"""A throwaway PostgreSQL database per test, on the server at TEST_POSTGRES_URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class PostgresUnavailable(RuntimeError):
    """No server answered; the message says how to get one."""


@contextmanager
def temporary_database() -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it afterwards."""
    admin_url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_URL)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"directdl_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as err:
        admin.dispose()
        shown = make_url(admin_url).render_as_string(hide_password=True)
        raise PostgresUnavailable(
            f"No PostgreSQL at {shown}: start one (`pg_ctlcluster 15 main start`, or run "
            f"`bash .ci/run`) or set TEST_POSTGRES_URL. ({type(err.orig).__name__})"
        ) from err
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
