"""Host messages: the agents' heartbeats, and the hosts the registration service knows of."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from directdl.contracts import senders
from directdl.contracts.base import Command, Event, Result
from directdl.contracts.bounds import MANY, Bytes, Digest, Id, Interval, Path, Short


class HostState(StrEnum):
    UP = "Up"
    DOWN = "Down"


class PoolStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pool_id: Id
    capacity_bytes: Bytes
    free_bytes: Bytes


class StoredTemplate(BaseModel):
    """A template file present on a pool, as the agent itself recorded it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template_id: Id
    pool_id: Id
    path: Path
    size: Bytes
    digest: Digest = Field(description="{SHA-256}hex of the downloaded bytes")
    image_digest: Digest | None = Field(
        None, description="{SHA-256}hex of the file, when it was decompressed"
    )
    last_used_at: datetime | None = Field(
        None, description="Stored, or last answered a deploy: the cache evicts the oldest first."
    )


class TrustedCertificate(BaseModel):
    """An alias actually present in the host's trust store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alias: Short
    fingerprint_sha256: Digest


class HostHeartbeat(Event):
    """An agent says it is alive every few seconds; a host silent for 3 intervals is down.
    A host that stops cleanly sends one last heartbeat with state Down."""

    routing_key: ClassVar[str] = "host.heartbeat"
    sent_by = senders.THE_HOST

    host_id: Id
    zone_id: Id
    cluster_id: Id
    state: HostState
    interval_seconds: Interval
    pools: Annotated[list[PoolStatus], Field(max_length=64)]
    templates: Annotated[list[StoredTemplate], Field(max_length=10_000)]
    certificates: Annotated[list[TrustedCertificate], Field(max_length=1000)] = Field(
        default_factory=list
    )
    # Liveness is arithmetic on it, against the receiver's aware clock.
    sent_at: AwareDatetime


class HostView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host_id: Id
    zone_id: Id
    cluster_id: Id
    state: HostState
    last_seen: datetime
    pools: Annotated[list[PoolStatus], Field(max_length=64)]
    templates: Annotated[list[StoredTemplate], Field(max_length=10_000)]


class HostList(Result):
    items: Annotated[list[HostView], Field(max_length=MANY)]


class ListHosts(Command):
    """The hosts known from their heartbeats; state is Down for one silent too long."""

    routing_key: ClassVar[str] = "host.list"
    result = HostList

    zone_id: Id | None = None
    state: HostState | None = Field(None, description="Only the hosts in this state now.")
