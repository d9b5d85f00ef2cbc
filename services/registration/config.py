"""Registration service settings: env prefix REGISTRATION_, localhost defaults."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from directdl.runtime.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRATION_", extra="ignore", frozen=True)

    health_port: int = 8081
