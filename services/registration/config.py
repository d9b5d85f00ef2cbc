"""Registration service settings: env prefix REGISTRATION_, localhost defaults."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from directdl.runtime.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRATION_", extra="ignore", frozen=True)

    health_port: int = 8081
    check_urls: bool = Field(
        True,
        description="Check each URL at registration; a template can opt out (--no-validate-url).",
    )
    watchdog_interval: float = Field(
        5.0, gt=0, description="Seconds between checks for silent hosts."
    )
