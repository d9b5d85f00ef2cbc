"""Who may send what: the contract's sender rules, checked where registration's messages
enter."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from directdl.bus.memory import InMemoryBus, rightful_sender
from directdl.bus.tables import roles
from directdl.contracts import certificate, download, host, settings, template
from directdl.contracts.senders import THE_HOST, HostNamed, Operators, Services, host_user
from directdl.runtime import metrics
from directdl_testing.messages import heartbeat

pytestmark = pytest.mark.unit


def known_hosts(bus: InMemoryBus) -> list[str]:
    reply = bus.call(host.ListHosts())
    assert reply.ok and reply.result is not None
    return [h["host_id"] for h in reply.result["items"]]


def test_a_host_reports_only_about_itself() -> None:
    beat = heartbeat("host-1")
    assert THE_HOST.refusal("host-agent-host-1", beat) is None
    for sender in ("host-agent-host-2", "cli", "registration", None):
        refusal = THE_HOST.refusal(sender, beat)
        assert refusal is not None and refusal.required == "host-agent-host-1", sender


def test_what_a_host_executes_comes_only_from_the_service_that_owns_it() -> None:
    assert download.DownloadTemplate.sent_by == Services(("registration",))
    assert certificate.InstallCertificate.sent_by == Services(("certificate",))
    assert certificate.RemoveCertificate.sent_by == Services(("certificate",))
    rule = download.DownloadTemplate.sent_by
    for sender in ("cli", "certificate", "host-agent-host-1", "guest", None):
        assert rule.refusal(sender, None) is not None, sender


def test_operators_commands_come_from_anyone_but_a_host() -> None:
    rule = template.RegisterTemplate.sent_by
    assert isinstance(rule, Operators)
    for sender in ("cli", "admin", "guest", "registration", None):
        assert rule.refusal(sender, None) is None, sender
    assert rule.refusal("host-agent-host-1", None) is not None


def test_every_host_scoped_message_names_its_host_and_every_service_event_its_service() -> None:
    for message in roles().messages:
        rule = message.sent_by
        if isinstance(rule, HostNamed):
            assert rule.field in message.model_fields, message.__name__
            assert message.routing_key.startswith(
                (
                    "host.heartbeat",
                    "host.inventory",
                    "template.download.",
                    "template.copies.",
                    "cert.host.",
                )
            )
        elif message.routing_key.startswith("host.") and "{host_id}" in message.routing_key:
            assert isinstance(rule, Services), message.__name__
    assert settings.SettingsChanged.sent_by == Services(
        ("registration", "certificate", "sync-scheduler")
    )


def test_a_forged_heartbeat_is_dropped_counted_and_logged_with_both_names(
    bus: InMemoryBus,
) -> None:
    counter = metrics.rejected.labels("", "host.heartbeat", "sender")
    before = counter._value.get()
    with capture_logs() as logs:
        bus.submit(heartbeat("host-9"), user_id="host-agent-host-2")
        bus.submit(heartbeat("host-8"), user_id="cli")
    assert known_hosts(bus) == []
    assert counter._value.get() == before + 2
    refused = [e for e in logs if e["event"] == "message.sender_refused"]
    assert [(e["claimed"], e["sender"], e["log_level"]) for e in refused] == [
        ("host-agent-host-9", "host-agent-host-2", "warning"),
        ("host-agent-host-8", "cli", "warning"),
    ]
    assert all(o.verdict.value == "ack" for o in bus.outcomes)


def test_the_rightful_host_is_believed(bus: InMemoryBus) -> None:
    beat = heartbeat("host-9")
    assert rightful_sender(beat) == host_user("host-9")
    bus.submit(beat, user_id="host-agent-host-9")
    assert known_hosts(bus) == ["host-9"]
