"""Global settings over the bus: any service answers, the owner applies, and the download
timeouts really change what the next deploy does."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from directdl.bus.client import BusClient
from directdl.contracts import deploy
from directdl.contracts import settings as msg
from directdl.contracts import template as tpl
from directdl_testing.faulty_http import FaultyServer
from directdl_testing.recorder import MessageRecorder
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.integration

SOCKET = "direct.download.socket.timeout"
CONNECT = "direct.download.connect.timeout"


def setting(client: BusClient, name: str) -> Any:
    reply = client.call(msg.GetSetting(name=name))
    assert reply.result is not None, reply.error
    return reply.result["setting"]["value"]


def update(client: BusClient, name: str, value: object) -> Any:
    reply = client.call(msg.UpdateSetting(name=name, value=value))  # type: ignore[arg-type]
    assert reply.ok, reply.error
    # Whichever service answers a get knows the change once its settings.changed has arrived.
    wait_until(lambda: all(setting(client, name) == value for _ in range(4)), timeout=5)


def test_list_hides_what_cloudstack_hides_unless_asked(stack: Any, client: BusClient) -> None:
    shown = client.call(msg.ListSettings()).result
    everything = client.call(msg.ListSettings(show_hidden=True)).result
    assert shown is not None and everything is not None
    names = {s["name"] for s in shown["items"]}
    assert {CONNECT, SOCKET, "direct.download.certificate.background.task.interval"} <= names
    assert "direct.download.connection.request.timeout" not in names
    hidden = next(
        s for s in everything["items"] if s["name"] == "direct.download.connection.request.timeout"
    )
    assert (hidden["value"], hidden["unit"], hidden["hidden"]) == (5000, "ms", True)


@pytest.mark.parametrize(
    ("name", "value", "code", "named"),
    [
        ("no.such.setting", 1, "NOT_FOUND", "no.such.setting"),
        (SOCKET, -1, "INVALID_MESSAGE", "-1"),
        (SOCKET, "soon", "INVALID_MESSAGE", "soon"),
        (SOCKET, 99_999_999, "INVALID_MESSAGE", "99999999"),
        ("direct.download.certificate.background.task.interval", -0.5, "INVALID_MESSAGE", "-0.5"),
    ],
)
def test_bad_updates_are_refused_by_whichever_service_takes_them(
    stack: Any, client: BusClient, name: str, value: object, code: str, named: str
) -> None:
    for _ in range(3):  # several tries land on several services
        reply = client.call(msg.UpdateSetting(name=name, value=value))  # type: ignore[arg-type]
        assert reply.error is not None and reply.error.code == code
        assert named in reply.error.message
    assert setting(client, SOCKET) == 5000


def test_an_update_is_applied_by_its_owner_and_announced(
    stack: Any, client: BusClient, recorder: MessageRecorder
) -> None:
    update(client, "directdl.certificate.expiry.warning.days", 10)
    update(client, SOCKET, 7000)
    changed = [
        m.body
        for m in recorder.expect("settings.changed", count=2)
        if m.body["previous"] is not None
    ]
    assert {(c["name"], c["owner"], c["value"]) for c in changed} >= {
        ("directdl.certificate.expiry.warning.days", "certificate", 10),
        (SOCKET, "registration", 7000),
    }


@pytest.fixture
def stalling() -> Iterator[FaultyServer]:
    with FaultyServer(b"x" * 1024) as server:
        server.stall_after_headers(30, times=100)
        yield server


def deploy_failure(client: BusClient, url: str) -> tuple[dict[str, Any], float]:
    reply = client.call(
        tpl.RegisterTemplate(
            name=url, url=url, zone_id="zone-1", hypervisor="KVM", format="RAW", validate_url=False
        )
    )
    assert reply.result is not None
    started = time.monotonic()
    outcome = client.call(
        deploy.DeployTemplate(
            template_id=reply.result["template"]["id"], zone_id="zone-1", host_id="host-1"
        ),
        timeout=60,
    )
    assert outcome.error is not None
    return outcome.error.details["attempts"][0], time.monotonic() - started


def test_the_socket_timeout_bounds_a_stalled_server_and_a_change_applies_to_the_next_deploy(
    stack: Any, client: BusClient, stalling: FaultyServer
) -> None:
    update(client, "directdl.download.retries", 1)
    update(client, SOCKET, 1000)
    attempt, elapsed = deploy_failure(client, f"{stalling.url}/a.raw")
    assert attempt["error_code"] == "READ_TIMEOUT"
    assert elapsed < 3

    update(client, SOCKET, 3000)
    attempt, elapsed = deploy_failure(client, f"{stalling.url}/b.raw")
    assert attempt["error_code"] == "READ_TIMEOUT"
    assert 3 <= elapsed < 6


@pytest.fixture
def unreachable() -> Iterator[str]:
    """A port whose accept queue is full: the kernel drops SYNs, as for an unroutable address
    (this machine may send nothing beyond loopback)."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port, fillers = listener.getsockname()[1], []
        try:
            while True:
                filler = socket.socket()
                fillers.append(filler)
                filler.settimeout(0.3)
                filler.connect(("127.0.0.1", port))
        except TimeoutError:
            pass
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            for filler in fillers:
                filler.close()


def test_the_connect_timeout_bounds_a_connect_that_gets_no_answer(
    stack: Any, client: BusClient, unreachable: str
) -> None:
    update(client, "directdl.download.retries", 1)
    update(client, CONNECT, 1000)
    attempt, elapsed = deploy_failure(client, f"{unreachable}/c.raw")
    assert attempt["error_code"] == "CONNECT_TIMEOUT"
    assert elapsed < 3
