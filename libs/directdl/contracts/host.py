"""Host messages: the agents' heartbeats, and the hosts the registration service knows of."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
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
    It is small on purpose: what the host holds travels in `HostInventory`, and the beat
    carries only that inventory's digest. A host that stops cleanly sends one last heartbeat
    with state Down."""

    routing_key: ClassVar[str] = "host.heartbeat"
    sent_by = senders.THE_HOST

    host_id: Id
    zone_id: Id
    cluster_id: Id
    state: HostState
    interval_seconds: Interval
    inventory_digest: Digest = Field(
        description="`inventory_digest()` of the host's last HostInventory; a receiver that "
        "holds another asks for the inventory again"
    )
    # Liveness is arithmetic on it, against the receiver's aware clock.
    sent_at: AwareDatetime


class HostInventory(Event):
    """What a host holds: its pools, the templates on them and its trust store. Sent when any
    of it changes, before the heartbeat that carries the new digest, and when asked."""

    routing_key: ClassVar[str] = "host.inventory"
    sent_by = senders.THE_HOST

    host_id: Id
    zone_id: Id
    cluster_id: Id
    pools: Annotated[list[PoolStatus], Field(max_length=64)]
    templates: Annotated[list[StoredTemplate], Field(max_length=10_000)]
    certificates: Annotated[list[TrustedCertificate], Field(max_length=1000)] = Field(
        default_factory=list
    )
    digest: Digest = Field(description="`inventory_digest()` of these three lists")
    sent_at: AwareDatetime


class RequestInventory(Command):
    """Send your HostInventory again: a service's heartbeat carried a digest it does not hold
    (it started afresh, or lost the inventory)."""

    routing_key: ClassVar[str] = "host.{host_id}.inventory.request"
    sent_by = senders.Services(senders.SERVICES)

    digest_seen: Digest | None = Field(None, description="The digest the heartbeat carried.")


def inventory_digest(
    pools: Sequence[PoolStatus],
    templates: Sequence[StoredTemplate],
    certificates: Sequence[TrustedCertificate],
) -> str:
    """`{SHA-256}` of the canonical JSON of the three lists, each sorted: the same holdings
    give the same digest whatever order the agent lists them in."""
    canonical = {
        "pools": sorted(_canonical(p) for p in pools),
        "templates": sorted(_canonical(t) for t in templates),
        "certificates": sorted(_canonical(c) for c in certificates),
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return "{SHA-256}" + hashlib.sha256(text.encode()).hexdigest()


def _canonical(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


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
