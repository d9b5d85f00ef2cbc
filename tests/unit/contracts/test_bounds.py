"""Every contract field is bounded, and the edge refuses NULs and headers HTTP cannot carry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from directdl.bus.tables import roles
from directdl.contracts import download, host, template
from directdl.contracts.base import Command
from directdl.contracts.bounds import DETAILS_TOTAL_MAX, clip, excerpt, header_problem
from directdl.contracts.errors import ErrorCode
from directdl.contracts.reply import Reply

pytestmark = pytest.mark.unit

MIB = 1 << 20


def models() -> Iterator[type[BaseModel]]:
    for message in roles().messages:
        yield message
        if issubclass(message, Command) and message.result is not None:
            yield message.result
    yield Reply


def unbounded(node: dict[str, Any], where: str) -> Iterator[str]:
    """Where a JSON Schema node (a field's) lets a value grow without limit."""
    if "$ref" in node or "enum" in node or "const" in node:
        return  # another definition (checked on its own), or a closed set of values
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key, []):
            yield from unbounded(branch, where)
    kind = node.get("type")
    if kind == "string" and node.get("format") != "date-time" and "maxLength" not in node:
        yield f"{where}: string without maxLength"
    if kind in ("integer", "number") and not ({"minimum", "maximum"} <= node.keys()):
        yield f"{where}: number without minimum and maximum"
    if kind == "array":
        if "maxItems" not in node:
            yield f"{where}: list without maxItems"
        yield from unbounded(node.get("items", {}), f"{where}[]")
    if kind == "object" and "additionalProperties" in node:
        if "maxProperties" not in node:
            yield f"{where}: map without maxProperties"
        values = node["additionalProperties"]
        if isinstance(values, dict) and values:
            yield from unbounded(values, f"{where}{{}}")
        yield from unbounded({"type": "string", **node.get("propertyNames", {})}, f"{where} keys")


def schema_gaps(model: type[BaseModel]) -> Iterator[str]:
    schema = model.model_json_schema()
    for name, definition in [(model.__name__, schema), *schema.get("$defs", {}).items()]:
        for field, node in definition.get("properties", {}).items():
            yield from unbounded(node, f"{name}.{field}")


def test_every_field_of_every_message_and_result_has_a_limit() -> None:
    gaps = sorted({gap for model in models() for gap in schema_gaps(model)})
    assert gaps == []


def test_the_check_finds_an_unbounded_field() -> None:
    class Loose(BaseModel):
        name: str
        tags: list[str]
        count: int

    assert sorted(schema_gaps(Loose)) == [
        "Loose.count: number without minimum and maximum",
        "Loose.name: string without maxLength",
        "Loose.tags: list without maxItems",
        "Loose.tags[]: string without maxLength",
    ]


def beat(**overrides: Any) -> dict[str, Any]:
    body = {
        "host_id": "h1",
        "zone_id": "z1",
        "cluster_id": "c1",
        "state": "Up",
        "interval_seconds": 5,
        "inventory_digest": "{SHA-256}" + "0" * 64,
        "sent_at": datetime.now(UTC).isoformat(),
    }
    return body | overrides


def inventory(**overrides: Any) -> dict[str, Any]:
    body = {
        "host_id": "h1",
        "zone_id": "z1",
        "cluster_id": "c1",
        "pools": [{"pool_id": "p1", "capacity_bytes": 10, "free_bytes": 5}],
        "templates": [],
        "digest": "{SHA-256}" + "0" * 64,
        "sent_at": datetime.now(UTC).isoformat(),
    }
    return body | overrides


@pytest.mark.parametrize("interval", [1e300, float("inf"), float("nan"), 0, -5, 3601, 0.05])
def test_a_heartbeat_interval_outside_a_tenth_of_a_second_to_an_hour_is_refused(
    interval: float,
) -> None:
    with pytest.raises(ValidationError):
        host.HostHeartbeat.model_validate(beat(interval_seconds=interval))


@pytest.mark.parametrize("interval", [0.1, 0.3, 5, 3600])
def test_a_sane_heartbeat_interval_is_accepted(interval: float) -> None:
    assert host.HostHeartbeat.model_validate(beat(interval_seconds=interval))


def test_byte_sizes_stay_within_a_signed_64_bit_column() -> None:
    pools = [{"pool_id": "p1", "capacity_bytes": 2**63, "free_bytes": 0}]
    with pytest.raises(ValidationError, match="capacity_bytes"):
        host.HostInventory.model_validate(inventory(pools=pools))
    pools[0]["capacity_bytes"] = 2**63 - 1
    assert host.HostInventory.model_validate(inventory(pools=pools))


@pytest.mark.parametrize("page", [10**20, 2**63, 0, -1])
def test_a_page_number_beyond_any_real_listing_is_refused(page: int) -> None:
    with pytest.raises(ValidationError, match="page"):
        template.ListTemplates.model_validate_json(f'{{"page": {page}}}')


def test_a_realistic_page_number_is_accepted() -> None:
    assert template.ListTemplates.model_validate_json('{"page": 1000}').page == 1000


def register(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "centos",
        "url": "https://images.example/c.qcow2",
        "zone_id": "z1",
        "hypervisor": "KVM",
        "format": "QCOW2",
    }
    return body | overrides


def nul_field(model: type[BaseModel], body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    [error] = caught.value.errors()
    assert error["type"] == "nul_character"
    return str(error["ctx"]["field"])


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (template.RegisterTemplate, register(name="a\x00b"), "name"),
        (template.RegisterTemplate, register(zone_id=["z1", "z\x00"]), "zone_id.1"),
        (template.RegisterTemplate, register(details={"k\x00": "v"}), "details.k\x00"),
        (template.RegisterTemplate, register(details={"note": "v\x00"}), "details.note"),
        (template.ListTemplates, {"keyword": "\x00"}, "keyword"),
        (template.ListTemplates, {"zone_id": "z\x00"}, "zone_id"),
        (template.GetTemplate, {"id": "\x00abc"}, "id"),
        (
            host.HostInventory,
            inventory(pools=[{"pool_id": "p\x00", "capacity_bytes": 1, "free_bytes": 1}]),
            "pools.0.pool_id",
        ),
        (host.HostHeartbeat, beat(inventory_digest="{SHA-256}\x00"), "inventory_digest"),
    ],
)
def test_a_nul_anywhere_is_refused_naming_where(
    model: type[BaseModel], body: dict[str, Any], field: str
) -> None:
    assert nul_field(model, body) == field


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Token", "snow\u2603man"),  # not latin-1
        ("X-Token", "a\r\nX-Injected: yes"),
        ("X-Token", "a\nb"),
        ("X-Token", "bell\x07"),
        ("X-Token", "del\x7f"),
        ("X Token", "v"),  # a space is not a token character
        ("X-Tok:en", "v"),
        ("", "v"),
        ("Ünicode", "v"),
    ],
)
def test_headers_http_cannot_carry_are_refused_in_details_and_in_the_download_command(
    name: str, value: str
) -> None:
    assert header_problem(name, value) is not None
    with pytest.raises(ValidationError, match="details"):
        template.RegisterTemplate.model_validate(register(details={f"HTTP_HEADER:{name}": value}))
    with pytest.raises(ValidationError, match="headers"):
        download.DownloadTemplate.model_validate(
            {
                "job_id": "j",
                "deploy_id": "d",
                "template_id": "t",
                "url": "https://images.example/c.qcow2",
                "protocol": "https",
                "format": "QCOW2",
                "headers": {name: value},
            }
        )


def test_headers_http_can_carry_and_other_details_are_accepted() -> None:
    details = {
        "HTTP_HEADER:Authorization": "Bearer abc.def\tghi",
        "HTTP_HEADER:X-Cafe": "caf\u00e9",  # latin-1 is fine
        "note": "\u2603 any text, when it is not a header",
    }
    command = template.RegisterTemplate.model_validate(register(details=details))
    assert command.details == details


def test_twenty_mebibytes_of_details_are_refused() -> None:
    with pytest.raises(ValidationError):
        template.RegisterTemplate.model_validate(register(details={"big": "x" * 20 * MIB}))
    many = {f"k{i}": "v" for i in range(33)}
    with pytest.raises(ValidationError, match="32"):
        template.RegisterTemplate.model_validate(register(details=many))
    wide = {f"k{i}": "v" * 4000 for i in range(5)}
    with pytest.raises(ValidationError, match=str(DETAILS_TOTAL_MAX)):
        template.RegisterTemplate.model_validate(register(details=wide))


def test_an_excerpt_is_short_and_says_how_long_the_whole_was() -> None:
    assert excerpt("short") == "short"
    shown = excerpt("é" * 1000)
    assert shown == "é" * 80 + "…(2000 bytes)"


def test_clipped_text_fits_its_field() -> None:
    assert clip("x" * 5000) == "x" * 4095 + "…"
    error = Reply.failure(ErrorCode.INTERNAL, "y" * 10_000).error
    assert error is not None and len(error.message) == 4096


def test_a_heartbeat_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="sent_at"):
        host.HostHeartbeat.model_validate(beat(sent_at="2026-01-01T00:00:00"))
