"""Registration tells a host's Up and Down once per transition, not once per heartbeat."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from directdl.bus.memory import InMemoryBus
from directdl.contracts.host import HostState
from directdl_testing.clocks import Wall
from directdl_testing.messages import heartbeat, host_says

pytestmark = pytest.mark.unit


def told(logs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (entry["event"], entry["log_level"], entry["host_id"])
        for entry in logs
        if entry["event"] in ("host.up", "host.down")
    ]


def test_up_and_down_are_each_told_once(bus: InMemoryBus, wall: Wall) -> None:
    with capture_logs() as logs:
        bus.submit_many(host_says("h1"))
        bus.submit(heartbeat("h1"))
        wall.advance(5 * 60)  # silent since
        bus.tick("watchdog")
        bus.tick("watchdog")
        bus.submit(heartbeat("h1", sent_at=wall()))

    assert told(logs) == [
        ("host.up", "info", "h1"),
        ("host.down", "warning", "h1"),
        ("host.up", "info", "h1"),
    ]


def test_a_host_that_says_it_stops_is_told_down_at_once(bus: InMemoryBus) -> None:
    with capture_logs() as logs:
        bus.submit_many(host_says("h1"))
        bus.submit_many(host_says("h1", state=HostState.DOWN))
        bus.tick("watchdog")

    assert told(logs) == [("host.up", "info", "h1"), ("host.down", "warning", "h1")]
