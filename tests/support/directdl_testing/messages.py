"""Valid messages for tests to send, with only what a test is about set by the test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from directdl.contracts.host import HostHeartbeat, HostState, PoolStatus


def heartbeat(host_id: str, **overrides: Any) -> HostHeartbeat:
    """An Up host of zone-1 with one empty pool, `pool-<host id>`, as its agent sends it."""
    fields: dict[str, Any] = {
        "host_id": host_id,
        "zone_id": "zone-1",
        "cluster_id": "c1",
        "state": HostState.UP,
        "interval_seconds": 5,
        "pools": [PoolStatus(pool_id=f"pool-{host_id}", capacity_bytes=10**12, free_bytes=10**11)],
        "templates": [],
        "sent_at": datetime.now(UTC),
    }
    return HostHeartbeat(**(fields | overrides))


def report(command: dict[str, Any], host_id: str, **overrides: Any) -> dict[str, Any]:
    """The fields every download event names, for the download `command` a host was sent."""
    return {
        "job_id": command["job_id"],
        "deploy_id": command["deploy_id"],
        "template_id": command["template_id"],
        "host_id": host_id,
        "pool_id": f"pool-{host_id}",
    } | overrides
