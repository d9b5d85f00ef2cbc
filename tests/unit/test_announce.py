"""Every service answers service.discover with who it is and where its health server is."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from directdl.bus.memory import InMemoryBus
from directdl.bus.tables import service_tables
from directdl.contracts.senders import host_user
from directdl.contracts.service import DiscoverServices, ServiceAnnounced
from directdl.runtime.announce import Announcer, health_url
from directdl.runtime.db import session_factory
from directdl.runtime.live_settings import LiveSettings
from directdl_testing.memory import memory_engine
from registration.adapters.orm import Base, settings, store
from registration.config import RegistrationSettings
from registration.handlers import HANDLERS
from registration.policy import DownloadPolicy
from registration.uow import RegistrationUnitOfWork

pytestmark = pytest.mark.unit

HEALTH = "http://registration.example:8081"


def announcer(service: str = "registration", host_id: str | None = None) -> Announcer:
    return Announcer.starting(service, lambda: HEALTH, host_id)


def registration_bus(who: Announcer) -> InMemoryBus:
    sessions = session_factory(memory_engine(Base.metadata))
    policy = DownloadPolicy()
    return InMemoryBus.serving(
        HANDLERS,
        {
            "live": LiveSettings("registration", settings),
            "policy": policy,
            "size_of": lambda *_: 4096,
            "destinations": lambda: policy.destinations,
            "watchdog_interval": lambda: 60.0,
            "announcer": who,
        },
        lambda: RegistrationUnitOfWork(sessions),
        store,
        sessions,
        {"owner": "registration"},
    )


def test_discover_is_answered_with_the_process_identity_each_time() -> None:
    who = announcer()
    bus = registration_bus(who)

    bus.submit(DiscoverServices())
    bus.submit(DiscoverServices())

    answers = [ServiceAnnounced.model_validate(b) for b in bus.published("service.announced")]
    assert len(answers) == 2
    assert {a.instance for a in answers} == {who.instance}
    first = answers[0]
    assert (first.service, first.health_url, first.host_id) == ("registration", HEALTH, None)
    assert first.version and first.started_at == who.started_at


def test_a_host_agent_may_not_ask_for_announcements() -> None:
    bus = registration_bus(announcer())

    bus.submit(DiscoverServices(), user_id=host_user("host-1"))

    assert bus.published("service.announced") == []


def test_each_process_start_is_its_own_instance() -> None:
    assert announcer().instance != announcer().instance


def test_every_service_answers_discover_and_may_announce() -> None:
    for name, table in service_tables().items():
        assert DiscoverServices in table.queues["events"], name
        assert ServiceAnnounced in table.publishes(), name
        assert DiscoverServices not in {m for t in table.shared.values() for m in t}, name


def test_a_host_agent_announces_its_own_host() -> None:
    announced = announcer(host_user("host-1"), "host-1").announcement()
    assert announced.host_id == "host-1"
    refusal = ServiceAnnounced.sent_by.refusal(host_user("host-2"), announced)
    assert refusal is not None and refusal.required == host_user("host-1")
    assert ServiceAnnounced.sent_by.refusal(host_user("host-1"), announced) is None


@pytest.mark.parametrize(
    ("service", "host_id"),
    [(host_user("host-1"), "host-2"), (host_user("host-1"), None), ("registration", "host-1")],
)
def test_an_announcement_names_its_host_consistently(service: str, host_id: str | None) -> None:
    with pytest.raises(ValidationError):
        ServiceAnnounced(
            service=service,
            instance="i-1",
            health_url=None,
            version="0.1.0",
            started_at=datetime.now(UTC),
            host_id=host_id,
        )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:8081"),
        ("0.0.0.0", f"http://{socket.gethostname()}:8081"),
        ("::", f"http://{socket.gethostname()}:8081"),
        ("::1", "http://[::1]:8081"),
    ],
)
def test_the_health_url_is_one_a_client_can_reach(host: str, expected: str) -> None:
    assert health_url(host, 8081) == expected


def test_the_health_url_setting_is_read_from_the_service_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REGISTRATION_HEALTH_URL", "http://localhost:18081")
    assert RegistrationSettings().health_url == "http://localhost:18081"
