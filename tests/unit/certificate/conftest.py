"""The certificate handlers on the in-memory bus, with an in-memory database and a test's clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from certificate.adapters.answers_clock import AnswersClock
from certificate.adapters.orm import Base, settings, store
from certificate.bootstrap import NAME, dependencies
from certificate.config import CertificateSettings
from certificate.handlers import HANDLERS
from certificate.uow import CertificateUnitOfWork
from directdl.bus.memory import InMemoryBus
from directdl.liveness import HeartbeatClock
from directdl.runtime.db import session_factory
from directdl.runtime.live_settings import LiveSettings
from directdl_testing.memory import memory_engine

Tick = Callable[[str], None]
ADDRESS = {"owner": NAME}


@dataclass
class Clock:
    """What the handlers take for now; a test moves it on instead of waiting."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
def live() -> LiveSettings:
    """The global settings at their defaults; a test may `remember` another value."""
    return LiveSettings(NAME, settings)


@pytest.fixture
def wiring(clock: Clock, live: LiveSettings) -> dict[str, Any]:
    """bootstrap()'s own dependencies, with the test's clock; the answers' clock judges at once
    (the service waits a moment after it starts: see test_answers_clock)."""
    return dependencies(CertificateSettings(), live) | {
        "clock": clock,
        "heartbeat_clock": HeartbeatClock(clock),
        "answers_clock": AnswersClock(clock, settle=0),
    }


@pytest.fixture
def bus(wiring: dict[str, Any]) -> InMemoryBus:
    sessions = session_factory(memory_engine(Base.metadata))
    return InMemoryBus.serving(
        HANDLERS, wiring, lambda: CertificateUnitOfWork(sessions), store, sessions, ADDRESS
    )


@pytest.fixture
def tick(bus: InMemoryBus) -> Tick:
    """Run a timer of the table once, as the service does."""
    return bus.tick
