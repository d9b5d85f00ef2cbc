"""Registration's scrape-time gauges: its hosts by zone and state, as of the heartbeat clock."""

from __future__ import annotations

from typing import Any

from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select

from directdl.contracts.host import HostState
from directdl.liveness import HeartbeatClock
from directdl.runtime import metrics
from directdl.runtime.service import Service
from registration.adapters.hosts import HOSTS, up_at


def hosts_by_state(service: Service[Any], clock: HeartbeatClock | None = None) -> list[Metric]:
    """Up or Down as `host.list` says it: a host is Down once silent too long, whatever it
    last said, so the state is worked out at `clock` (the service's; the wall clock when
    none) rather than stored. Counted in SQL: one row per zone and state, whatever the
    number of hosts."""
    up = up_at((clock or HeartbeatClock()).now()).label("up")
    query = select(HOSTS.c.zone_id, up, func.count()).group_by(HOSTS.c.zone_id, up)
    with service.sessions() as session:
        rows = session.execute(query).all()
    counts = {
        (zone, HostState.UP if is_up else HostState.DOWN): count for zone, is_up, count in rows
    }
    name = service.definition.name
    # Both states of every zone, so that a zone whose hosts are all Up shows Down at 0.
    zones = sorted({zone for zone, _ in counts})
    return [
        metrics.hosts.family(
            ((name, zone, state.value), counts.get((zone, state), 0))
            for zone in zones
            for state in HostState
        )
    ]
