"""A template URL's user-info and query reach only the host sent to download it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from structlog.testing import capture_logs

from directdl.bus.memory import InMemoryBus
from directdl.contracts import deploy, download
from directdl.contracts import template as tpl
from directdl.contracts.bounds import URL_MAX
from directdl.contracts.template import SourceProtocol, TemplateFormat, TemplateType
from directdl_testing.messages import host_says
from registration.domain.template import Template

pytestmark = pytest.mark.unit

URL = "https://user:s3cret@127.0.0.1:1/t.qcow2?X-Amz-Signature=abc123"
SECRETS = ("s3cret", "abc123")


def leaks(anything: object) -> list[str]:
    text = json.dumps(anything, default=str)
    return [secret for secret in SECRETS if secret in text]


def test_views_events_and_replies_show_the_url_redacted(bus: InMemoryBus) -> None:
    with capture_logs() as logs:
        registered = bus.call(
            tpl.RegisterTemplate(
                name="t", url=URL, zone_id="zone-1", hypervisor="KVM", format="QCOW2"
            )
        )
        template_id = registered.result["template"]["id"]
        replies = [
            registered,
            bus.call(tpl.GetTemplate(id=template_id)),
            bus.call(tpl.ListTemplates()),
            bus.call(tpl.UpdateTemplate(id=template_id, name="renamed")),
        ]
        bus.submit_many(host_says("h1"))
        correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
        [cmd] = bus.published("host.h1.template.download")
        # an agent quoting the URL it was given, in its own words
        bus.submit(
            download.DownloadFailed(
                job_id=cmd["job_id"],
                deploy_id=cmd["deploy_id"],
                template_id=template_id,
                host_id="h1",
                pool_id="pool-h1",
                code="CONNECTION",
                message=f"cannot fetch {URL}; password s3cret, query X-Amz-Signature=abc123",
            )
        )
        replies.append(bus.reply_for(correlation))
        replies.append(bus.call(tpl.DeleteTemplate(id=template_id)))

    assert cmd["url"] == URL, "the chosen host gets the URL it needs"
    assert registered.result["template"]["url"] == "https://***@127.0.0.1:1/t.qcow2?***"
    for reply in replies:
        assert reply is not None and leaks(reply.model_dump(mode="json")) == [], reply
    failed = replies[-2]
    assert failed is not None and failed.error is not None and "CONNECTION" in failed.error.message
    others = [(k, body) for k, body in bus.events if not k.endswith(".template.download")]
    assert {k for k, _ in others} >= {"template.registered", "template.updated"}
    assert {k for k, _ in others} >= {"template.deploy.failed", "template.deleted"}
    assert leaks(others) == []
    assert leaks(logs) == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://user:s3cret@h.example/t.qcow2?sig=abc123",
        "https://user:s3cret@h.example/t.vhd?sig=abc123",
        "https://user:s3cret@/t.qcow2?sig=abc123",
    ],
    ids=["scheme", "extension", "no host"],
)
def test_a_refused_url_is_named_without_its_secrets(bus: InMemoryBus, url: str) -> None:
    with capture_logs() as logs:
        reply = bus.call(
            tpl.RegisterTemplate(
                name="t", url=url, zone_id="zone-1", hypervisor="KVM", format="QCOW2"
            )
        )
    assert reply.error is not None and "***@" in reply.error.message
    assert leaks(reply.model_dump(mode="json")) == []
    assert leaks(logs) == []


def stored_template(**fields: Any) -> Template:
    """A template as registration holds it, without the handlers that would check it."""
    defaults: dict[str, Any] = {
        "id": "t",
        "name": "t",
        "url": "https://h.example/a.qcow2",
        "protocol": SourceProtocol.HTTPS,
        "zone_ids": ("z",),
        "hypervisor": "KVM",
        "format": TemplateFormat.QCOW2,
        "checksum": None,
        "template_type": TemplateType.USER,
    }
    return Template(**(defaults | fields))


def test_a_url_with_nothing_to_hide_is_shown_as_given() -> None:
    template = stored_template(url="HTTPS://h.example/a.qcow2#part")
    assert template.view().url == "HTTPS://h.example/a.qcow2#part"


def test_a_longest_url_with_short_user_info_and_query_still_has_a_view(bus: InMemoryBus) -> None:
    url = "https://u@h.example/" + "a" * 2000 + ".qcow2?s"  # "***" outgrows "u" and "s"
    url = url.replace("a" * 2000, "a" * (2000 + URL_MAX - len(url)))
    assert len(url) == URL_MAX
    reply = bus.call(
        tpl.RegisterTemplate(name="t", url=url, zone_id="zone-1", hypervisor="KVM", format="QCOW2")
    )
    assert reply.ok, reply.error
    assert reply.result["template"]["url"].startswith("https://***@h.example/aaa")


def test_a_refused_body_quotes_no_secret_of_the_url_in_it(bus: InMemoryBus) -> None:
    with_url = {"name": "t", "url": URL, "zone_id": "zone-1", "format": "QCOW2"}
    with capture_logs() as logs:
        whole = bus.call_raw("template.register", json.dumps(with_url).encode())
        alone = bus.call_raw("template.register", json.dumps(with_url | {"name": 7}).encode())
    for reply in (whole, alone):
        assert not reply.ok and reply.error is not None
        assert reply.error.code == "INVALID_MESSAGE"
        assert not leaks(reply.model_dump()), reply
    assert logs and not leaks(logs)


def test_a_credential_header_is_shown_hidden_and_sent_to_the_host(bus: InMemoryBus) -> None:
    reply = bus.call(
        tpl.RegisterTemplate(
            name="t",
            url="https://127.0.0.1:1/t.qcow2",
            zone_id="zone-1",
            hypervisor="KVM",
            format=TemplateFormat.QCOW2,
            details={"HTTP_HEADER:Authorization": "Bearer s3cret", "HTTP_HEADER:Accept": "*/*"},
        )
    )
    assert reply.ok and reply.result is not None
    shown = reply.result["template"]["details"]
    assert shown == {"HTTP_HEADER:Authorization": "***", "HTTP_HEADER:Accept": "*/*"}
    assert not leaks(bus.published("template.registered"))


def test_details_stored_before_they_had_bounds_are_shown_within_them() -> None:
    stored = {
        "big": "x" * (20 * 2**20),
        "HTTP_HEADER:X-Bad": "line\r\nbreak",
        "HTTP_HEADER:Cookie": "session=s3cret",
        "kept": "yes",
    }
    template = stored_template(details=stored)
    # The view validates against the contract's bounds, so a list holding it still answers.
    assert template.view().details == {"HTTP_HEADER:Cookie": "***", "kept": "yes"}
