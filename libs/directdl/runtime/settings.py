"""The settings every service shares; each service subclasses it with its own env prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from directdl.bus.connection import broker_urls

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class ServiceSettings(BaseSettings):
    """Localhost defaults, so that running a service needs no configuration at all."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    amqp_url: str = Field(
        DEFAULT_AMQP_URL,
        validation_alias=AliasChoices("AMQP_URL"),
        description="The broker: one URL, or a cluster's nodes as URLs separated by commas.",
    )
    exchange: str = Field(
        "directdl",
        validation_alias=AliasChoices("DIRECTDL_EXCHANGE"),
        description="The topic exchange every message goes through.",
    )
    queue_prefix: str = Field(
        "",
        validation_alias=AliasChoices("DIRECTDL_QUEUE_PREFIX"),
        description="Prepended to queue names; tests use it to isolate themselves.",
    )
    data_dir: Path = Field(
        Path("var"),
        validation_alias=AliasChoices("DIRECTDL_DATA_DIR"),
        description="Where the embedded SQLite databases, pools and trust stores live by default.",
    )
    log_level: str = Field(
        "INFO",
        validation_alias=AliasChoices("DIRECTDL_LOG_LEVEL"),
        description="The least severe log level written: DEBUG, INFO, WARNING or ERROR.",
    )

    # Set per service through its env prefix, e.g. REGISTRATION_DATABASE_URL.
    database_url: str | None = Field(
        None,
        description="Any SQLAlchemy URL, e.g. postgresql+psycopg://...; "
        "unset: SQLite, <data dir>/<service>.db.",
    )
    health_host: str = Field(
        "127.0.0.1", description="Where /healthz, /readyz and /metrics listen; 0.0.0.0 in compose."
    )
    health_port: int = Field(
        0, description="The port of /healthz, /readyz and /metrics; 0: any free one."
    )
    health_url: str | None = Field(
        None,
        description="The health URL the service announces; unset: http://<health host>:<port>, "
        "the machine's name for 0.0.0.0. For compose, where the published port differs.",
    )
    prefetch: int = Field(
        64,
        ge=1,
        le=1000,
        description="Unacked deliveries at once (basic.qos); those waiting for a worker commit "
        "together, so a wider window means fewer commits under load.",
    )
    workers: int = Field(4, ge=1, le=64, description="Threads that run handlers.")
    max_attempts: int = Field(
        3,
        ge=1,
        le=20,
        description="Deliveries of a message that keeps failing before it is dead-lettered.",
    )

    @field_validator("amqp_url")
    @classmethod
    def _one_user_on_every_node(cls, url: str) -> str:
        broker_urls(url)  # a ValueError says what is wrong; pydantic names the variable
        return url

    def resolved_database_url(self, service: str) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"
