"""The destination policy in registration: literal hosts refused before anything connects,
and the live networks carried by every download command."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.contracts import deploy, download
from directdl.contracts import template as tpl
from directdl.settings_catalog import SETTINGS
from directdl_testing.messages import host_says
from registration.handlers import SizeOf
from registration.policy import DownloadPolicy

pytestmark = pytest.mark.unit

LIVE = {
    "directdl.download.denied.networks": "169.254.0.0/16,127.0.0.2/32",
    "directdl.download.allowed.networks": "10.0.0.0/8,127.0.0.0/8",
}


def live(name: str) -> int | float | str:
    return LIVE.get(name, SETTINGS[name].default)


@pytest.fixture
def checked() -> list[str]:
    """URLs the (fake) URL check was asked about."""
    return []


@pytest.fixture
def policy() -> DownloadPolicy:
    return DownloadPolicy(live)


@pytest.fixture
def size_of(checked: list[str]) -> SizeOf:
    def size_of(url: str, *_: Any) -> int:
        checked.append(url)
        return 4096

    return size_of


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records (and refuses) any socket opened, connection made or name looked up."""
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            attempts.append(what)
            raise OSError(f"{what} during a test that must not touch the network")

        return record

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    return attempts


def register(bus: InMemoryBus, url: str, **extra: Any) -> Any:
    return bus.call(
        tpl.RegisterTemplate(
            name=url.rsplit("/", 1)[-1],
            url=url,
            zone_id="zone-1",
            hypervisor="KVM",
            format="RAW",
            **extra,
        )
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/x.raw",
        "https://[::ffff:169.254.169.254]/x.raw",
        "http://2852039166/x.raw",
        "nfs://127.0.0.2/export/x.raw",
        "http://127.0.0.2:8080/images/x.meta4",
    ],
)
@pytest.mark.parametrize("validate_url", [False, True])
def test_a_denied_literal_host_is_refused_before_anything_connects(
    bus: InMemoryBus, checked: list[str], no_network: list[str], url: str, validate_url: bool
) -> None:
    reply = register(bus, url, validate_url=validate_url)

    assert reply.error is not None and reply.error.code == "DESTINATION_DENIED"
    assert "is in denied network" in reply.error.message
    assert reply.error.details["rule"].startswith("in denied network ")
    assert checked == [] and no_network == []
    assert bus.published("template.registered") == []


def test_the_refusal_names_the_host_and_the_rule_and_hides_credentials(
    bus: InMemoryBus, no_network: list[str]
) -> None:
    reply = register(bus, "http://user:pw@169.254.169.254/x.raw?sig=secret", validate_url=False)

    assert reply.error is not None
    assert "169.254.169.254 is in denied network 169.254.0.0/16" in reply.error.message
    assert "pw" not in reply.error.message and "secret" not in reply.error.message
    assert reply.error.details["host"] == "169.254.169.254"


def test_a_literal_outside_the_allowed_networks_is_refused(bus: InMemoryBus) -> None:
    reply = register(bus, "http://192.168.7.7/x.raw", validate_url=False)
    assert reply.error is not None and reply.error.code == "DESTINATION_DENIED"
    assert "in no allowed network (10.0.0.0/8, 127.0.0.0/8)" in reply.error.message


def test_an_allowed_literal_and_a_name_register(bus: InMemoryBus, no_network: list[str]) -> None:
    assert register(bus, "http://10.1.1.1/a.raw", validate_url=False).ok
    assert register(bus, "http://images.internal/b.raw", validate_url=False).ok
    assert no_network == []


def test_the_download_command_carries_the_live_networks_and_a_refusal_ends_the_deploy(
    bus: InMemoryBus,
) -> None:
    for n in (1, 2):
        bus.submit_many(host_says(f"h{n}"))
    registered = register(bus, "http://images.internal/c.raw")
    bus.submit(
        deploy.DeployTemplate(template_id=registered.result["template"]["id"], zone_id="zone-1")
    )
    commands = [body for key, body in bus.events if key.endswith(".template.download")]
    assert len(commands) == 1
    assert commands[0]["denied_networks"] == ["169.254.0.0/16", "127.0.0.2/32"]
    assert commands[0]["allowed_networks"] == ["10.0.0.0/8", "127.0.0.0/8"]

    cmd = commands[0]
    bus.submit(
        download.DownloadFailed(
            job_id=cmd["job_id"],
            deploy_id=cmd["deploy_id"],
            template_id=cmd["template_id"],
            host_id="h1",
            pool_id="pool-h1",
            code="DESTINATION_DENIED",
            message="images.internal resolves to 127.0.0.2, which is in denied network",
        )
    )
    assert len([k for k, _ in bus.events if k.endswith(".template.download")]) == 1
    assert len(bus.published("template.deploy.failed")) == 1
