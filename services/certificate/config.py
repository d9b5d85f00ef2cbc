"""Certificate service settings: env prefix CERTIFICATE_, localhost defaults."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from directdl.runtime.settings import ServiceSettings


class CertificateSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CERTIFICATE_", extra="ignore", frozen=True)

    health_port: int = 8082
    host_timeout: float = Field(
        30.0, gt=0, description="Seconds a host has to answer before it counts as FAILED."
    )
    expiry_warning_days: int = Field(
        30, ge=0, le=3650, description="cert.expiring goes out this many days before not_after."
    )
    expiry_check_interval: float = Field(3600.0, gt=0)
    timer_interval: float = Field(1.0, gt=0, description="How often late answers are looked for.")
