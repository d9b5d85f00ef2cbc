"""Registration tells a host's Up and Down once per transition, not once per heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from directdl.bus.memory import InMemoryBus
from directdl.contracts.host import HostState
from directdl_testing.messages import heartbeat

pytestmark = pytest.mark.unit


def told(logs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (entry["event"], entry["log_level"], entry["host_id"])
        for entry in logs
        if entry["event"] in ("host.up", "host.down")
    ]


def test_up_and_down_are_each_told_once(bus: InMemoryBus) -> None:
    with capture_logs() as logs:
        bus.submit(heartbeat("h1"))
        bus.submit(heartbeat("h1"))
        bus.submit(heartbeat("h1", sent_at=datetime.now(UTC) - timedelta(minutes=5)))
        bus.tick("watchdog")
        bus.tick("watchdog")
        bus.submit(heartbeat("h1"))

    assert told(logs) == [
        ("host.up", "info", "h1"),
        ("host.down", "warning", "h1"),
        ("host.up", "info", "h1"),
    ]


def test_a_host_that_says_it_stops_is_told_down_at_once(bus: InMemoryBus) -> None:
    with capture_logs() as logs:
        bus.submit(heartbeat("h1"))
        bus.submit(heartbeat("h1", state=HostState.DOWN))
        bus.tick("watchdog")

    assert told(logs) == [("host.up", "info", "h1"), ("host.down", "warning", "h1")]
