"""The settings every service shares; each service subclasses it with its own env prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class ServiceSettings(BaseSettings):
    """Localhost defaults, so that running a service needs no configuration at all."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    amqp_url: str = Field(DEFAULT_AMQP_URL, validation_alias=AliasChoices("AMQP_URL"))
    exchange: str = Field("directdl", validation_alias=AliasChoices("DIRECTDL_EXCHANGE"))
    queue_prefix: str = Field(
        "",
        validation_alias=AliasChoices("DIRECTDL_QUEUE_PREFIX"),
        description="Prepended to queue names; tests use it to isolate themselves.",
    )
    data_dir: Path = Field(Path("var"), validation_alias=AliasChoices("DIRECTDL_DATA_DIR"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("DIRECTDL_LOG_LEVEL"))

    # Set per service through its env prefix, e.g. REGISTRATION_DATABASE_URL.
    database_url: str | None = None
    health_host: str = "127.0.0.1"
    health_port: int = 0
    prefetch: int = Field(8, ge=1, le=1000)
    workers: int = Field(4, ge=1, le=64)
    max_attempts: int = Field(
        3,
        ge=1,
        le=20,
        description="Deliveries of a message that keeps failing before it is dead-lettered.",
    )

    def resolved_database_url(self, service: str) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"
