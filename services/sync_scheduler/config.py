"""Sync-scheduler settings: env prefix SYNC_SCHEDULER_, localhost defaults."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from directdl.runtime.settings import ServiceSettings


class SchedulerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SYNC_SCHEDULER_", extra="ignore", frozen=True)

    health_port: int = 8083
