"""SIGKILL the registration service mid-command: after a restart there is one effect, one event
and one reply."""

from __future__ import annotations

import json
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from directdl.bus.client import DIRECT_REPLY_TO, ReplyTimeout
from directdl.bus.topology import Topology
from directdl.contracts.template import ListTemplates
from directdl_testing.counting import EveryReply
from directdl_testing.recorder import MessageRecorder

if TYPE_CHECKING:
    from tests.e2e.conftest import StartService

pytestmark = pytest.mark.e2e

NAME = "e2e-crash"
BODY = {
    "name": NAME,
    "url": "https://images.example/e2e-crash.qcow2",
    "zone_id": "zone-1",
    "hypervisor": "KVM",
    "format": "QCOW2",
    "checksum": "{SHA-256}" + "cd" * 32,
    "validate_url": False,  # a made-up URL: this test is about crashes, not sources
}
# Long enough that the paused handler never resumes on its own before the kill.
PAUSE_S = 120
QUIET_S = 1.0


@pytest.fixture
def counting_client(amqp_url: str, topology: Topology) -> Iterator[EveryReply]:
    with EveryReply(amqp_url, topology, app_id="e2e-crash") as client:
        yield client


@pytest.fixture
def events(amqp_url: str, topology: Topology) -> Iterator[MessageRecorder]:
    with MessageRecorder(amqp_url, topology, "template.#") as recorder:
        yield recorder


def registered_events(recorder: MessageRecorder, template_id: str) -> list[Any]:
    return [
        m
        for m in recorder.messages
        if m.routing_key == "template.registered" and m.body["template"]["id"] == template_id
    ]


@pytest.mark.parametrize("point", ["before_commit", "before_ack"])
def test_killed_while_handling_register_has_one_effect(
    point: str,
    start_service: StartService,
    counting_client: EveryReply,
    events: MessageRecorder,
) -> None:
    client = counting_client
    service = start_service(extra_env={"DIRECTDL_FAULT_PAUSE": f"{point}:{PAUSE_S}"})
    message_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    body = json.dumps(BODY).encode()

    client.publish(
        "template.register",
        body,
        message_id=message_id,
        correlation_id=correlation_id,
        reply_to=DIRECT_REPLY_TO,
    )
    paused = service.wait_for_log("fault.paused", timeout=10)
    assert (paused["point"], paused["message_id"]) == (point, message_id)
    service.kill(signal.SIGKILL)
    service.restart()  # without the fault: the broker redelivers the unacked command

    if point == "before_ack":
        # The redelivered command finds its message_id in the inbox: answered, not redone.
        service.wait_for_log("message.duplicate", message_id=message_id, same_request=True)
    else:
        service.wait_for_log("message.handled", message_id=message_id)
    reply = client.wait_reply(correlation_id, timeout=15)
    assert reply.ok, reply
    assert reply.result is not None
    template_id = reply.result["template"]["id"]
    # One reply: a second would arrive within this quiet period, after the first.
    with pytest.raises(ReplyTimeout):
        client.wait_reply(correlation_id, timeout=QUIET_S)
    delivered = client.replies_to(correlation_id)
    # The outbox relay is at least once: a kill between its publish and its commit resends the
    # same reply (same message_id). A different message_id would be a second answer.
    assert len(set(delivered)) == 1, f"replies to one command: {delivered}"

    page = client.call(ListTemplates(name=NAME), timeout=10)
    assert page.ok, page
    assert page.result is not None
    assert page.result["total"] == 1
    assert [t["id"] for t in page.result["items"]] == [template_id]

    events.expect("template.registered", timeout=10)
    events.poll(QUIET_S)  # a duplicate from the redelivery would have arrived by now
    found = registered_events(events, template_id)
    ids = Counter(m.properties.message_id for m in found)
    assert len(ids) == 1, f"template.registered events for {template_id}: {dict(ids)}"
    assert [m for m in events.messages if m.routing_key == "template.registered"] == found

    # The inbox remembers the message_id across the crash: a resend is answered, not redone.
    again = client.call_raw("template.register", body, message_id=message_id, timeout=10)
    assert again == reply
    page = client.call(ListTemplates(name=NAME), timeout=10)
    assert page.result is not None and page.result["total"] == 1
    events.poll(QUIET_S)
    assert Counter(m.properties.message_id for m in registered_events(events, template_id)) == ids
    assert service.find_logs("message.duplicate", message_id=message_id, same_request=False)


def test_clean_restart_keeps_the_catalogue(
    start_service: StartService, counting_client: EveryReply
) -> None:
    service = start_service()
    reply = counting_client.call_raw("template.register", json.dumps(BODY).encode(), timeout=10)
    assert reply.ok, reply
    assert service.stop() == 0  # SIGTERM: drains and exits cleanly
    assert service.find_logs("service.stopped")
    service.restart()
    page = counting_client.call(ListTemplates(), timeout=10)
    assert page.result is not None
    assert [t["name"] for t in page.result["items"]] == [NAME]
