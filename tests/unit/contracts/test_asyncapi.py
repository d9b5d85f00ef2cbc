"""The generated AsyncAPI document: fresh on disk, complete, and structurally valid AsyncAPI 3.0."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from directdl.bus.tables import roles
from directdl.contracts import asyncapi
from directdl.contracts.base import EXCHANGE, Command
from directdl.contracts.errors import ErrorCode
from directdl.contracts.reply import Reply
from directdl.runtime import docs

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[3] / "docs"
# Key and runtime-expression patterns from the AsyncAPI 3.0.0 JSON Schema.
COMPONENT_KEY = re.compile(r"^[\w\d.\-_]+$")
RUNTIME_EXPRESSION = re.compile(r"^\$message\.(header|payload)#(/(([^/~])|(~[01]))*)*")


ROLES = roles()
MESSAGES = ROLES.messages


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return asyncapi.build_document(ROLES)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = doc
    for escaped in ref[2:].split("/"):
        part = escaped.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def deref(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = resolve(doc, node["$ref"])
    return node


def refs(node: Any, path: str = "#") -> Iterator[tuple[str, str]]:
    """Every `$ref` in the document, with where it was found."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield path, value
            else:
                yield from refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from refs(value, f"{path}/{index}")


@pytest.mark.parametrize("name", ["asyncapi.json", "messages.md"])
def test_checked_in_docs_match_the_models(name: str) -> None:
    expected = asyncapi.render_files(ROLES)[name]
    path = DOCS / name
    fresh = path.exists() and path.read_text(encoding="utf-8") == expected
    # A bare boolean keeps pytest from printing a diff of two thousand-line files.
    assert fresh, f"docs/{name} is out of date: run `make docs`"


def test_check_passes_on_fresh_docs_and_fails_on_stale_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--out-dir", str(tmp_path), "--root", str(tmp_path)]
    assert docs.main(where) == 0
    assert docs.main(["--check", *where]) == 0
    written = json.loads((tmp_path / "asyncapi.json").read_text())
    assert written == asyncapi.build_document(ROLES)
    assert (tmp_path / "deploy/rabbitmq/definitions.json").exists()

    (tmp_path / "asyncapi.json").write_text("{}\n")
    capsys.readouterr()
    assert docs.main(["--check", *where]) == 1
    assert "asyncapi.json is out of date: run `make docs`" in capsys.readouterr().err
    assert (tmp_path / "asyncapi.json").read_text() == "{}\n", "--check must write nothing"


def test_document_is_deterministic(doc: dict[str, Any]) -> None:
    files = asyncapi.render_files(ROLES)
    assert files == asyncapi.render_files(ROLES)
    # The reference reads the same from the checked-in JSON as from the built document.
    assert asyncapi.render_markdown(json.loads(files["asyncapi.json"])) == files["messages.md"]
    for section in (doc["channels"], doc["operations"], *doc["components"].values()):
        assert list(section) == sorted(section)


@pytest.mark.parametrize("model", MESSAGES, ids=lambda m: m.routing_key)
def test_every_message_has_a_channel_and_a_message(doc: dict[str, Any], model: Any) -> None:
    channel_id = re.sub(r"[{}]", "", model.routing_key)
    channel = doc["channels"][channel_id]
    assert channel["address"] == model.routing_key
    assert channel["bindings"]["amqp"]["is"] == "routingKey"
    assert channel["bindings"]["amqp"]["exchange"] == {
        "name": EXCHANGE,
        "type": "topic",
        "durable": True,
        "autoDelete": False,
    }
    message = deref(doc, channel["messages"][model.__name__])
    assert message is doc["components"]["messages"][model.__name__]
    assert deref(doc, message["payload"]) == doc["components"]["schemas"][model.__name__]
    assert message["bindings"]["amqp"]["messageType"] == model.routing_key
    assert message.get("description") == (model.__doc__ and inspect.cleandoc(model.__doc__))
    consumers, producers = ROLES.consumers.get(model, ()), ROLES.producers.get(model, ())
    assert message["x-consumers"] == sorted(consumers)
    assert message["x-producers"] == sorted(producers)
    if issubclass(model, Command):
        assert message["x-emits"] == sorted(m.routing_key for m in ROLES.emits.get(model, ()))
    actions = {
        op["action"]
        for op in doc["operations"].values()
        if op["channel"]["$ref"] == f"#/channels/{channel_id}"
    }
    expected = {"receive" for _ in consumers} | {"send" for _ in producers}
    assert actions == expected


def test_every_message_has_a_producer_and_every_command_a_consumer() -> None:
    """A command nobody handles, or a message nobody sends, is a gap in some table."""
    for model in MESSAGES:
        assert ROLES.producers.get(model), f"{model.routing_key} has no producer"
        if issubclass(model, Command):
            assert ROLES.consumers.get(model), f"{model.routing_key} has no consumer"


def test_the_roles_come_from_the_tables_not_the_models() -> None:
    """The drift the hand-kept lists had: heartbeats without the sync-scheduler, uploads
    without their consumer, provisioning without its producer."""
    from directdl.contracts import certificate, host

    assert "sync-scheduler" in ROLES.consumers[host.HostHeartbeat]
    assert "sync-scheduler" in ROLES.consumers[certificate.CertificateUploaded]
    assert "sync-scheduler" in ROLES.producers[certificate.ProvisionCertificate]
    for model in MESSAGES:
        assert not hasattr(model, "consumers") and not hasattr(model, "producers"), model


def test_top_level_is_asyncapi_3(doc: dict[str, Any]) -> None:
    allowed = {"asyncapi", "id", "info", "servers", "defaultContentType", "channels"}
    allowed |= {"operations", "components"}
    assert set(doc) <= allowed
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] == "directdl"
    assert doc["info"]["version"]
    assert doc["info"]["description"]
    assert doc["servers"]["amqp"]["host"] == "localhost:5672"
    assert doc["servers"]["amqp"]["protocol"] == "amqp"


def test_every_ref_resolves_inside_the_document(doc: dict[str, Any]) -> None:
    found = list(refs(doc))
    assert found, "the document has no $ref at all"
    for where, ref in found:
        assert isinstance(ref, str), where
        resolve(doc, ref)
    assert "$defs" not in json.dumps(doc), "nested $defs should be hoisted to components.schemas"


def test_component_keys_are_valid(doc: dict[str, Any]) -> None:
    for section in doc["components"].values():
        for key in section:
            assert COMPONENT_KEY.match(key), key


def test_operations_follow_the_asyncapi_3_rules(doc: dict[str, Any]) -> None:
    operation_binding = {"deliveryMode", "timestamp", "ack", "bindingVersion", "expiration"}
    for operation_id, op in doc["operations"].items():
        assert op["action"] in {"send", "receive"}, operation_id
        channel_ref = op["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), operation_id
        resolve(doc, channel_ref)
        # An operation's messages must be a subset of its channel's messages.
        for message in op["messages"]:
            assert message["$ref"].startswith(f"{channel_ref}/messages/"), operation_id
        assert set(op["bindings"]["amqp"]) <= operation_binding, operation_id
        assert op["bindings"]["amqp"]["deliveryMode"] == 2
        if "reply" not in op:
            continue
        reply = op["reply"]
        assert RUNTIME_EXPRESSION.match(reply["address"]["location"]), operation_id
        # With a dynamic reply address the reply channel must not have one of its own.
        assert resolve(doc, reply["channel"]["$ref"])["address"] is None
        for message in reply["messages"]:
            assert message["$ref"].startswith(f"{reply['channel']['$ref']}/messages/")


def test_messages_follow_the_asyncapi_3_rules(doc: dict[str, Any]) -> None:
    fields = {"contentType", "headers", "payload", "correlationId", "tags", "summary", "name"}
    fields |= {"title", "description", "externalDocs", "deprecated", "examples", "bindings"}
    fields |= {"traits"}
    for name, message in doc["components"]["messages"].items():
        assert {k for k in message if not k.startswith("x-")} <= fields, name
        assert message["contentType"] == "application/json"
        assert RUNTIME_EXPRESSION.match(message["correlationId"]["location"]), name
        assert set(message["bindings"]["amqp"]) <= {
            "contentEncoding",
            "messageType",
            "bindingVersion",
        }
        headers = deref(doc, message["headers"])
        properties = deref(doc, headers["allOf"][0]) if "allOf" in headers else headers
        assert "message_id" in properties["required"], name
        assert properties["properties"]["content_type"]["const"] == "application/json"
    for channel_id, channel in doc["channels"].items():
        assert channel["address"] is None or isinstance(channel["address"], str), channel_id
        for ref in channel["messages"].values():
            assert ref["$ref"].startswith("#/components/messages/"), channel_id


def test_commands_reply_with_ok_and_error_codes(doc: dict[str, Any]) -> None:
    commands = [m for m in MESSAGES if issubclass(m, Command)]
    replies = [op["reply"] for op in doc["operations"].values() if "reply" in op]
    sides = [(*ROLES.consumers.get(m, ()), *ROLES.producers.get(m, ())) for m in commands]
    assert len(replies) == sum(len(s) for s in sides)
    for reply in replies:
        message = deref(doc, reply["messages"][0])
        assert message["name"] == Reply.__name__
        payload = deref(doc, message["payload"])
        assert {"ok", "error"} <= set(payload["properties"])
        assert payload["required"] == ["ok"]
        error = next(b for b in payload["properties"]["error"]["anyOf"] if "$ref" in b)
        code = deref(doc, deref(doc, error)["properties"]["code"])
        assert code["enum"] == [c.value for c in ErrorCode]
        assert message["headers"]["allOf"][1]["properties"]["type"] == {"const": "reply"}
        assert message["correlationId"]["location"] == "$message.header#/correlation_id"


def test_markdown_lists_every_routing_key_and_error_code(doc: dict[str, Any]) -> None:
    text = asyncapi.render_markdown(doc)
    for model in MESSAGES:
        assert f"### `{model.routing_key}`" in text
        anchor = re.sub(r"[^\w\- ]", "", model.routing_key.lower())
        assert f"[`{model.routing_key}`](#{anchor})" in text
    for code in ErrorCode:
        assert f"- `{code.value}`" in text
