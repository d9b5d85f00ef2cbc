"""The registration handlers on the in-memory bus, with an in-memory database."""

from __future__ import annotations

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.runtime.db import session_factory
from directdl.runtime.live_settings import LiveSettings
from directdl_testing.clocks import Wall
from directdl_testing.memory import memory_engine
from registration.adapters.orm import Base, settings, store
from registration.clock import ServiceClock
from registration.handlers import HANDLERS, SizeOf
from registration.policy import DownloadPolicy
from registration.uow import RegistrationUnitOfWork


@pytest.fixture
def live() -> LiveSettings:
    """The service's live settings, which settings.update changes."""
    return LiveSettings("registration", settings)


@pytest.fixture
def policy() -> DownloadPolicy:
    """The download policy; a test module may override it, with its own live settings (or
    the `live` ones, to follow settings.update)."""
    return DownloadPolicy()


@pytest.fixture
def size_of() -> SizeOf:
    """The URL check: every template answers with 4 KiB unless a test module overrides it."""
    return lambda *_: 4096


@pytest.fixture
def wall() -> Wall:
    """The wall clock the service's heartbeat clock reads; a test moves it on to make hosts
    fall silent."""
    return Wall()


@pytest.fixture
def clock(wall: Wall) -> ServiceClock:
    """The service's heartbeat clock, on the test's wall clock."""
    return ServiceClock(wall)


@pytest.fixture
def bus(
    live: LiveSettings, policy: DownloadPolicy, size_of: SizeOf, clock: ServiceClock
) -> InMemoryBus:
    sessions = session_factory(memory_engine(Base.metadata))
    return InMemoryBus.serving(
        HANDLERS,
        {
            "live": live,
            "policy": policy,
            "size_of": size_of,
            "destinations": lambda: policy.destinations,
            "watchdog_interval": lambda: 60.0,
        },
        lambda: RegistrationUnitOfWork(sessions, clock),
        store,
        sessions,
        {"owner": "registration"},
    )
