"""The sync-scheduler handlers on the in-memory bus, with an in-memory database."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.liveness import HeartbeatClock
from directdl.runtime.db import session_factory
from directdl.runtime.live_settings import LiveSettings
from directdl_testing.memory import memory_engine
from sync_scheduler.adapters.orm import Base, settings, store
from sync_scheduler.handlers import HANDLERS
from sync_scheduler.uow import SchedulerUnitOfWork

BusFactory = Callable[[float], InMemoryBus]


@pytest.fixture
def make_bus() -> BusFactory:
    """A bus whose timed runs are `interval` seconds apart (0: the task is disabled)."""

    def make(interval: float) -> InMemoryBus:
        sessions = session_factory(memory_engine(Base.metadata))
        return InMemoryBus.serving(
            HANDLERS,
            {
                "live": LiveSettings("sync-scheduler", settings),
                "interval": lambda: interval,
                "tick_interval": lambda: interval,
                "heartbeat_clock": HeartbeatClock(),
            },
            lambda: SchedulerUnitOfWork(sessions),
            store,
            sessions,
            {"owner": "sync-scheduler"},
        )

    return make


@pytest.fixture
def bus(make_bus: BusFactory) -> InMemoryBus:
    return make_bus(3600.0)
