"""Host messages: the agents' heartbeats, and the hosts the registration service knows of."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from directdl.contracts.base import Command, Event, Result

AGENT = "host-agent"
REGISTRATION = "registration"


class HostState(StrEnum):
    UP = "Up"
    DOWN = "Down"


class PoolStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pool_id: str
    capacity_bytes: int
    free_bytes: int


class StoredTemplate(BaseModel):
    """A template file present on a pool, as the agent itself recorded it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template_id: str
    pool_id: str
    path: str
    size: int
    digest: str = Field(description="{SHA-256}hex of the downloaded bytes")


class TrustedCertificate(BaseModel):
    """An alias actually present in the host's trust store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alias: str
    fingerprint_sha256: str


class HostHeartbeat(Event):
    """An agent says it is alive every few seconds; a host silent for 3 intervals is down.
    A host that stops cleanly sends one last heartbeat with state Down."""

    routing_key: ClassVar[str] = "host.heartbeat"
    producers = (AGENT,)
    consumers = (REGISTRATION, "certificate")

    host_id: str
    zone_id: str
    cluster_id: str
    state: HostState
    interval_seconds: float
    pools: list[PoolStatus]
    templates: list[StoredTemplate]
    certificates: list[TrustedCertificate] = Field(default_factory=list)
    sent_at: datetime


class HostView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host_id: str
    zone_id: str
    cluster_id: str
    state: HostState
    last_seen: datetime
    pools: list[PoolStatus]
    templates: list[StoredTemplate]


class HostList(Result):
    items: list[HostView]


class ListHosts(Command):
    """The hosts known from their heartbeats; state is Down for one silent too long."""

    routing_key: ClassVar[str] = "host.list"
    consumers = (REGISTRATION,)
    result = HostList

    zone_id: str | None = None
