"""Certificate service settings: env prefix CERTIFICATE_, localhost defaults."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from directdl.runtime.settings import ServiceSettings


class CertificateSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CERTIFICATE_", extra="ignore", frozen=True)

    health_port: int = 8082
    expiry_check_interval: float = Field(
        3600.0, gt=0, description="Seconds between looks for certificates about to expire."
    )
    timer_interval: float = Field(
        1.0, gt=0, description="Seconds between looks for hosts late to answer."
    )
