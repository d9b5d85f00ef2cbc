"""Registration service settings: env prefix REGISTRATION_, localhost defaults."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from directdl.runtime.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRATION_", extra="ignore", frozen=True)

    health_port: int = 8081
    # CloudStack's direct.download.* timeouts, in milliseconds, sent with every download.
    download_connect_timeout_ms: int = Field(5000, ge=1, le=3_600_000)
    download_socket_timeout_ms: int = Field(5000, ge=1, le=3_600_000)
    download_connection_request_timeout_ms: int = Field(5000, ge=1, le=3_600_000)
    download_max_attempts: int = Field(5, ge=1, le=20, description="Transient retries per host.")
    checksum_attempts: int = Field(
        2, ge=1, le=5, description="Downloads before a mismatch is final."
    )
    check_urls: bool = Field(
        True, description="Check each URL at registration (a message can still opt out)."
    )
    watchdog_interval: float = Field(
        5.0, gt=0, description="Seconds between checks for silent hosts."
    )
