"""The certificate handlers on the in-memory bus, with an in-memory database."""

from __future__ import annotations

import pytest

from certificate.adapters.orm import Base, store
from certificate.handlers import Policy, queues
from certificate.uow import CertificateUnitOfWork
from directdl.bus.memory import InMemoryBus
from directdl.runtime.db import session_factory
from directdl.testing.memory import memory_engine


@pytest.fixture
def bus() -> InMemoryBus:
    sessions = session_factory(memory_engine(Base.metadata))
    every_route = {k: r for table in queues(Policy()).values() for k, r in table.items()}
    return InMemoryBus(every_route, lambda: CertificateUnitOfWork(sessions), store, sessions)
