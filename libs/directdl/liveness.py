"""When a host counts as Up: it said so, and it has been heard from lately."""

from __future__ import annotations

from datetime import datetime, timedelta

from directdl.contracts.host import HostState

# A host silent for this many heartbeat intervals counts as down.
MISSED_HEARTBEATS = 3


def is_up(state: str, last_seen: datetime, interval_seconds: float, now: datetime) -> bool:
    silence = timedelta(seconds=interval_seconds * MISSED_HEARTBEATS)
    return state == HostState.UP and now - last_seen <= silence
