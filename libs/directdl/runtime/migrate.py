"""Schema migrations with Alembic, run at service start (never `create_all` in production)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, create_engine

from directdl.runtime.db import UtcDateTime


def alembic_config(script_location: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(script_location: Path, database_url: str) -> None:
    command.upgrade(alembic_config(script_location, database_url), "head")


def run_migrations(target_metadata: MetaData) -> None:
    """The body of every service's Alembic env.py: online migrations on the configured URL."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url)
    with engine.connect() as connection:
        # batch mode lets later migrations alter tables on SQLite too
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            render_item=_render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def _render_item(kind: str, item: object, autogen_context: Any) -> str | Literal[False]:
    """Migrations name plain SQLAlchemy types, so they never import the project's own."""
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False
