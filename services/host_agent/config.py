"""Host agent settings: env prefix HOST_AGENT_, one agent per KVM host and pool."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from directdl.runtime.settings import ServiceSettings


class HostAgentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HOST_AGENT_", extra="ignore", frozen=True)

    host_id: str = "host-1"
    zone_id: str = "zone-1"
    cluster_id: str = "cluster-1"
    pool_id: str = "pool-1"
    pool_path: Path | None = Field(None, description="Primary storage; <data dir>/pools/<host>.")
    heartbeat_interval: float = Field(5.0, gt=0, le=3600)
    cache_interval: float = Field(
        60.0, gt=0, le=86400, description="How often the pool is held to its cache limits."
    )
    download_workers: int = Field(2, ge=1, le=16)
    health_port: int = 8090
    # CloudStack's agent keeps uploaded certificates in cloud.jks beside its own private key;
    # this store holds trusted certificates only, so it is a file of its own.
    truststore_path: Path | None = Field(None, description="<data dir>/truststores/<host>.p12")
    # It protects nothing secret (public certificates), but Java tools insist on one; this
    # is their conventional default, and it can be set.
    truststore_password: str = "changeit"  # noqa: S105

    @property
    def service_name(self) -> str:
        return f"host-agent-{self.host_id}"

    def resolved_truststore_path(self) -> Path:
        path = self.truststore_path or self.data_dir / "truststores" / f"{self.host_id}.p12"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.resolve()

    def resolved_pool_path(self) -> Path:
        path = self.pool_path or self.data_dir / "pools" / self.host_id
        path.mkdir(parents=True, exist_ok=True)
        return path.resolve()
