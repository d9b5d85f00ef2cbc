"""Host agent settings: env prefix HOST_AGENT_, one agent per KVM host and pool."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from directdl.runtime.settings import ServiceSettings


class HostAgentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HOST_AGENT_", extra="ignore", frozen=True)

    host_id: str = Field("host-1", description="This KVM host; also names its broker user.")
    zone_id: str = Field("zone-1", description="The zone the host is in.")
    cluster_id: str = Field("cluster-1", description="The cluster the host is in.")
    pool_id: str = Field("pool-1", description="The primary storage pool it downloads into.")
    pool_path: Path | None = Field(
        None, description="The pool's directory; unset: <data dir>/pools/<host id>."
    )
    heartbeat_interval: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Seconds between heartbeats; a host silent for three counts as down.",
    )
    cache_interval: float = Field(
        60.0, gt=0, le=86400, description="Seconds between holding the pool to its cache limits."
    )
    download_workers: int = Field(2, ge=1, le=16, description="Downloads at once.")
    health_port: int = 8090
    # CloudStack's agent keeps uploaded certificates in cloud.jks beside its own private key;
    # this store holds trusted certificates only, so it is a file of its own.
    truststore_path: Path | None = Field(
        None, description="The PKCS12 trust store; unset: <data dir>/truststores/<host id>.p12."
    )
    # It protects nothing secret (public certificates), but Java tools insist on one; this
    # is their conventional default, and it can be set.
    truststore_password: str = Field("changeit", description="The trust store's password.")

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
