"""Registration's scrape-time gauges: its hosts by zone and state, as of now."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from prometheus_client.metrics_core import Metric
from sqlalchemy import select

from directdl.contracts.host import HostState
from directdl.liveness import is_up
from directdl.runtime import metrics
from directdl.runtime.service import Service
from registration.adapters.orm import HostRow


def hosts_by_state(service: Service[Any]) -> list[Metric]:
    """Up or Down as `host.list` says it: a host is Down once silent too long, whatever it
    last said, so the state is worked out now rather than stored. One narrow query; the rule
    stays in `directdl.liveness` instead of being written again in each database's SQL."""
    columns = HostRow.zone_id, HostRow.state, HostRow.last_seen, HostRow.interval_seconds
    with service.sessions() as session:
        rows = session.execute(select(*columns)).all()
    now = datetime.now(UTC)
    counts = Counter(
        (zone, HostState.UP if is_up(state, seen, interval, now) else HostState.DOWN)
        for zone, state, seen, interval in rows
    )
    name = service.definition.name
    # Both states of every zone, so that a zone whose hosts are all Up shows Down at 0.
    zones = sorted({zone for zone, _ in counts})
    return [
        metrics.hosts.family(
            ((name, zone, state.value), counts[(zone, state)])
            for zone in zones
            for state in HostState
        )
    ]
