"""The registration handlers on the in-memory bus, with an in-memory database."""

from __future__ import annotations

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.runtime.db import session_factory
from directdl.testing.memory import memory_engine
from registration.adapters.orm import Base, store
from registration.bootstrap import queues
from registration.policy import DownloadPolicy
from registration.uow import RegistrationUnitOfWork


@pytest.fixture
def bus() -> InMemoryBus:
    sessions = session_factory(memory_engine(Base.metadata))
    every_route = {
        k: r
        for table in queues(DownloadPolicy(), lambda *_: 4096).values()
        for k, r in table.items()
    }
    return InMemoryBus(every_route, lambda: RegistrationUnitOfWork(sessions), store, sessions)
