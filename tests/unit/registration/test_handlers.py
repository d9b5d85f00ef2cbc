"""Registration handlers through the in-memory bus: replies, events and stored state."""

from __future__ import annotations

from typing import Any

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.contracts import template as msg

pytestmark = pytest.mark.unit

SHA256 = "{SHA-256}" + "0f" * 32


def register(bus: InMemoryBus, message_id: str | None = None, **overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "name": "centos-9",
        "url": "https://images.example/centos-9.qcow2",
        "zone_id": "zone-1",
        "hypervisor": "kvm",
        "format": "qcow2",
        "checksum": SHA256.lower(),
    } | overrides
    return bus.call(msg.RegisterTemplate(**fields), message_id=message_id)


def test_register_stores_normalised_fields_and_emits_registered(bus: InMemoryBus) -> None:
    reply = register(bus, details={"HTTP_HEADER:Authorization": "Bearer x", "HTTP_HEADER:X-A": "1"})

    assert reply.ok, reply.error
    template = reply.result["template"]
    assert template["hypervisor"] == "KVM"
    assert template["format"] == "QCOW2"
    assert template["checksum"] == SHA256
    # A credential header is a secret like the URL's: shown hidden, sent only to the host.
    assert template["details"] == {"HTTP_HEADER:Authorization": "***", "HTTP_HEADER:X-A": "1"}
    assert bus.published("template.registered") == [{"template": template}]
    assert bus.call(msg.GetTemplate(id=template["id"])).result == {"template": template}


def test_bare_hex_checksum_takes_its_algorithm_from_its_length(bus: InMemoryBus) -> None:
    reply = register(bus, checksum="d41d8cd98f00b204e9800998ecf8427e")
    assert reply.result["template"]["checksum"] == "{MD5}d41d8cd98f00b204e9800998ecf8427e"


def test_names_are_unique_per_zone_not_globally(bus: InMemoryBus) -> None:
    assert register(bus).ok
    clash = register(bus, zone_id=["zone-2", "zone-1"])
    elsewhere = register(bus, zone_id="zone-2")

    assert clash.error.code == "CONFLICT"
    assert "centos-9" in clash.error.message and "zone-1" in clash.error.message
    assert elsewhere.ok


def test_the_same_message_id_twice_has_one_effect(bus: InMemoryBus) -> None:
    first = register(bus, message_id="m-1")
    second = register(bus, message_id="m-1")

    assert first == second
    assert bus.call(msg.ListTemplates()).result["total"] == 1
    assert len(bus.published("template.registered")) == 1


@pytest.mark.parametrize(
    ("overrides", "code", "named"),
    [
        ({"hypervisor": "VMware"}, "UNSUPPORTED", "VMware"),
        ({"url": "ftp://h/a/c.qcow2"}, "UNSUPPORTED", "ftp"),
        ({"url": "file:///var/c.qcow2"}, "UNSUPPORTED", "file"),
        ({"url": "https://h/a/c.raw"}, "INVALID_MESSAGE", "https://h/a/c.raw"),
        ({"checksum": "{SHA-256}zz"}, "INVALID_MESSAGE", "{SHA-256}zz"),
        ({"checksum": "abc"}, "INVALID_MESSAGE", "abc"),
        ({"direct_download": False}, "UNSUPPORTED", "direct_download"),
    ],
)
def test_invalid_registrations_are_refused_and_store_nothing(
    bus: InMemoryBus, overrides: dict[str, Any], code: str, named: str
) -> None:
    reply = register(bus, **overrides)

    assert not reply.ok
    assert reply.error.code == code
    assert named in reply.error.message
    assert bus.call(msg.ListTemplates()).result["total"] == 0
    assert bus.published("template.#") == []


def test_schema_errors_list_every_bad_field(bus: InMemoryBus) -> None:
    reply = bus.call_raw("template.register", b'{"name": "", "format": "VHD", "extra": 1}')

    assert reply.error.code == "INVALID_MESSAGE"
    fields = {e["field"] for e in reply.error.details["errors"]}
    assert {"name", "format", "extra", "url", "zone_id", "hypervisor"} <= fields
    assert "VHD" in str(reply.error.details)


def test_list_filters_and_pages(bus: InMemoryBus) -> None:
    for i in range(5):
        register(bus, name=f"tpl-{i}", zone_id="zone-1" if i % 2 else "zone-2")
    register(bus, name="router", template_type="ROUTING", zone_id="zone-1")

    in_zone_1 = bus.call(msg.ListTemplates(zone_id="zone-1")).result
    routing = bus.call(msg.ListTemplates(template_type=msg.TemplateType.ROUTING)).result
    page_2 = bus.call(msg.ListTemplates(page=2, page_size=4)).result
    keyword = bus.call(msg.ListTemplates(keyword="tpl-")).result

    assert {t["name"] for t in in_zone_1["items"]} == {"tpl-1", "tpl-3", "router"}
    assert [t["name"] for t in routing["items"]] == ["router"]
    assert (page_2["total"], len(page_2["items"])) == (6, 2)
    assert keyword["total"] == 5


def test_update_renames_and_promotes_to_system(bus: InMemoryBus) -> None:
    template_id = register(bus).result["template"]["id"]

    reply = bus.call(msg.UpdateTemplate(id=template_id, name="centos-sys", template_type="SYSTEM"))

    assert reply.result["template"]["name"] == "centos-sys"
    assert reply.result["template"]["template_type"] == "SYSTEM"
    [event] = bus.published("template.updated")
    assert event["changed"] == ["name", "template_type"]
    assert register(bus).ok, "the old name is free again"


def test_a_system_template_cannot_go_back(bus: InMemoryBus) -> None:
    template_id = register(bus, template_type="SYSTEM").result["template"]["id"]
    reply = bus.call(msg.UpdateTemplate(id=template_id, template_type="USER"))
    assert reply.error.code == "UNSUPPORTED"


def test_rename_onto_a_taken_name_conflicts(bus: InMemoryBus) -> None:
    register(bus, name="a")
    b = register(bus, name="b").result["template"]["id"]
    assert bus.call(msg.UpdateTemplate(id=b, name="a")).error.code == "CONFLICT"


def test_delete_removes_and_emits_deleted(bus: InMemoryBus) -> None:
    template = register(bus).result["template"]

    assert bus.call(msg.DeleteTemplate(id=template["id"])).ok
    assert bus.published("template.deleted") == [
        {"id": template["id"], "name": "centos-9", "zone_ids": ["zone-1"]}
    ]
    missing = bus.call(msg.GetTemplate(id=template["id"]))
    assert missing.error.code == "NOT_FOUND"
    assert template["id"] in missing.error.message


@pytest.mark.parametrize("routing_key", ["template.get", "template.update", "template.delete"])
def test_unknown_template_is_not_found(bus: InMemoryBus, routing_key: str) -> None:
    reply = bus.call_raw(routing_key, b'{"id": "nope"}')
    assert reply.error.code == "NOT_FOUND"
    assert "'nope'" in reply.error.message
