"""The sync-scheduler handlers on the in-memory bus, with an in-memory database."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.runtime.db import session_factory
from directdl.testing.memory import memory_engine
from sync_scheduler.adapters.orm import Base, store
from sync_scheduler.handlers import queues
from sync_scheduler.uow import SchedulerUnitOfWork

BusFactory = Callable[[float], InMemoryBus]


@pytest.fixture
def make_bus() -> BusFactory:
    """A bus whose timed runs are `interval` seconds apart (0: the task is disabled)."""

    def make(interval: float) -> InMemoryBus:
        sessions = session_factory(memory_engine(Base.metadata))
        every_route = {
            k: r for table in queues(lambda: interval).values() for k, r in table.items()
        }
        return InMemoryBus(every_route, lambda: SchedulerUnitOfWork(sessions), store, sessions)

    return make


@pytest.fixture
def bus(make_bus: BusFactory) -> InMemoryBus:
    return make_bus(3600.0)
