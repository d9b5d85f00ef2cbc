"""Valid messages for tests to send, with only what a test is about set by the test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from directdl.contracts.host import (
    HostHeartbeat,
    HostInventory,
    HostState,
    PoolStatus,
    inventory_digest,
)


def inventory(host_id: str, **overrides: Any) -> HostInventory:
    """What an Up host of zone-1 holds: one empty pool, `pool-<host id>`, and no
    certificates; its digest is computed from what it lists, unless overridden."""
    fields: dict[str, Any] = {
        "host_id": host_id,
        "zone_id": "zone-1",
        "cluster_id": "c1",
        "pools": [PoolStatus(pool_id=f"pool-{host_id}", capacity_bytes=10**12, free_bytes=10**11)],
        "templates": [],
        "certificates": [],
        "sent_at": datetime.now(UTC),
    } | overrides
    if "digest" not in fields:
        # Validated first, so that a test may list them as plain dicts.
        listed = HostInventory.model_validate(fields | {"digest": "{SHA-256}" + "0" * 64})
        fields["digest"] = inventory_digest(listed.pools, listed.templates, listed.certificates)
    return HostInventory(**fields)


def heartbeat(host_id: str, **overrides: Any) -> HostHeartbeat:
    """An Up host of zone-1 beating, carrying the digest of `inventory(host_id)` unless told
    another."""
    fields: dict[str, Any] = {
        "host_id": host_id,
        "zone_id": "zone-1",
        "cluster_id": "c1",
        "state": HostState.UP,
        "interval_seconds": 5,
        "sent_at": datetime.now(UTC),
    } | overrides
    if "inventory_digest" not in fields:
        fields["inventory_digest"] = inventory(host_id, zone_id=fields["zone_id"]).digest
    return HostHeartbeat(**fields)


def host_says(host_id: str, **overrides: Any) -> list[HostInventory | HostHeartbeat]:
    """What an agent sends when it starts or its holdings change: its inventory, then a
    heartbeat carrying that inventory's digest. Each override goes to the message with that
    field (`zone_id`, `cluster_id` and `sent_at` to both); submit them with `submit_many`."""
    shared = {"host_id", "zone_id", "cluster_id", "sent_at"}
    unknown = set(overrides) - set(HostInventory.model_fields) - set(HostHeartbeat.model_fields)
    if unknown:
        raise TypeError(f"neither message has {', '.join(sorted(unknown))}")
    listed = inventory(
        host_id, **{k: v for k, v in overrides.items() if k in HostInventory.model_fields}
    )
    beat = {
        k: v
        for k, v in overrides.items()
        if k in HostHeartbeat.model_fields and (k in shared or k not in HostInventory.model_fields)
    }
    return [listed, heartbeat(host_id, inventory_digest=listed.digest, **beat)]


def report(command: dict[str, Any], host_id: str, **overrides: Any) -> dict[str, Any]:
    """The fields every download event names, for the download `command` a host was sent."""
    return {
        "job_id": command["job_id"],
        "deploy_id": command["deploy_id"],
        "template_id": command["template_id"],
        "host_id": host_id,
        "pool_id": f"pool-{host_id}",
    } | overrides
