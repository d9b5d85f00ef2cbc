"""The bus's AsyncAPI 3.0 document and message reference, from the models and the tables' roles."""

from __future__ import annotations

import inspect
import json
import re
from importlib.metadata import version
from typing import Any

from pydantic import BaseModel, Field

from directdl.contracts.base import CONTENT_TYPE, EXCHANGE, REPLY_TYPE, Command, Message
from directdl.contracts.reference import render_markdown
from directdl.contracts.reply import Reply
from directdl.contracts.roles import Roles

__all__ = ["AmqpProperties", "build_document", "render_files", "render_markdown"]

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"
PERSISTENT = 2
SCHEMA_REF = "#/components/schemas/{model}"
SERVER = "amqp"
REPLY_CHANNEL = "reply"
JSON_FILE = "asyncapi.json"
MARKDOWN_FILE = "messages.md"

DESCRIPTION = f"""\
The messages exchanged by the directdl services. Every message is published to the durable \
`{EXCHANGE}` topic exchange with the routing key declared on its model.

- The body is the model as UTF-8 JSON (`{CONTENT_TYPE}`); unknown fields are rejected. A message \
that fails validation is dead-lettered and, when it has a `reply_to`, answered with an \
`INVALID_MESSAGE` error reply.
- Every message carries the AMQP properties `message_id` (unique; consumers record it, so a \
redelivery is processed once), `type` (the routing key), `timestamp` and `content_type`, and is \
published persistent (delivery mode {PERSISTENT}).
- A command is named in the imperative. When it has a `reply_to`, exactly one `Reply` goes to \
that queue with the command's `correlation_id`: `{{"ok": true, "result": {{...}}}}` or \
`{{"ok": false, "error": {{"code": ..., "message": ..., "details": {{...}}}}}}`. An expected \
failure is an answer with a stable code, not a crash. After a failure the reply may be \
delivered twice, with the same `message_id`: a client ignores the copy (docs/delivery.md).
- An event is named in the past tense: a fact, broadcast to every queue bound to its routing key.
"""


class AmqpProperties(BaseModel):
    """AMQP basic properties carried by every message, replies included."""

    message_id: str = Field(
        description="Unique per message: the idempotency key consumers record with their changes."
    )
    type: str = Field(description=f"The routing key of the message; `{REPLY_TYPE}` on a reply.")
    timestamp: int = Field(description="When the message was published, in POSIX seconds.")
    content_type: str = Field(
        description="The body is JSON.", json_schema_extra={"const": CONTENT_TYPE}
    )
    delivery_mode: int = Field(
        PERSISTENT,
        description="Persistent: the message survives a broker restart.",
        json_schema_extra={"const": PERSISTENT},
    )
    app_id: str | None = Field(None, description="The service or client that published it.")
    user_id: str | None = Field(
        None,
        description="The broker user that published it, which RabbitMQ validates; consumers "
        "act only on messages from the sender `x-sent-by` names.",
    )
    reply_to: str | None = Field(
        None, description="Commands only: the queue that gets exactly one reply."
    )
    correlation_id: str | None = Field(
        None,
        description="Chosen by the sender of a command; copied onto its reply and its events.",
    )


def _pointer(*parts: str) -> str:
    """A JSON pointer into this document (RFC 6901 escapes)."""
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": _pointer(*parts)}


def _put(mapping: dict[str, Any], key: str, value: Any) -> None:
    # Two models with one name (or one routing key) would silently overwrite each other.
    if mapping.setdefault(key, value) != value:
        raise ValueError(f"two different definitions are both named {key!r}: rename one")


def _add_schema(schemas: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    """Put the model's schema and its `$defs` into components.schemas; return a `$ref` to it."""
    schema = model.model_json_schema(ref_template=SCHEMA_REF)
    for name, definition in schema.pop("$defs", {}).items():
        _put(schemas, name, definition)
    _put(schemas, model.__name__, schema)
    return _ref("components", "schemas", model.__name__)


def _envelope(model: type[BaseModel], message_type: str, schemas: dict[str, Any]) -> dict[str, Any]:
    """The parts every message object has: payload, AMQP properties and bindings."""
    message: dict[str, Any] = {"name": model.__name__}
    if model.__doc__:
        message["description"] = inspect.cleandoc(model.__doc__)
    typed = {"properties": {"type": {"const": message_type}}}
    return message | {
        "contentType": CONTENT_TYPE,
        "headers": {"type": "object", "allOf": [_add_schema(schemas, AmqpProperties), typed]},
        "payload": _add_schema(schemas, model),
        "correlationId": {
            "description": "Ties a reply, and the events a command causes, to that command.",
            "location": "$message.header#/correlation_id",
        },
        "bindings": {
            "amqp": {
                "messageType": message_type,
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _message(model: type[Message], roles: Roles, schemas: dict[str, Any]) -> dict[str, Any]:
    message = _envelope(model, model.routing_key, schemas)
    message |= {
        "tags": [{"name": "command" if issubclass(model, Command) else "event"}],
        "x-consumers": list(roles.consumers.get(model, ())),
        "x-producers": list(roles.producers.get(model, ())),
        "x-sent-by": model.sent_by.describe(),
    }
    if issubclass(model, Command):
        message["x-emits"] = sorted(m.routing_key for m in roles.emits.get(model, ()))
        if model.result is not None:
            message["x-result"] = _add_schema(schemas, model.result)
    return message


def _operation(action: str, service: str, model: type[Message]) -> dict[str, Any]:
    binding: dict[str, Any] = {"deliveryMode": PERSISTENT, "timestamp": True}
    if action == "receive":
        binding["ack"] = True
    binding["bindingVersion"] = AMQP_BINDING_VERSION
    operation: dict[str, Any] = {
        "action": action,
        "channel": _ref("channels", _channel_id(model)),
        "messages": [_ref("channels", _channel_id(model), "messages", model.__name__)],
        "summary": f"{service} {action}s {model.routing_key}",
        "bindings": {"amqp": binding},
    }
    if issubclass(model, Command):
        operation["reply"] = {
            "address": {
                "description": "The queue named in the command's `reply_to` property.",
                "location": "$message.header#/reply_to",
            },
            "channel": _ref("channels", REPLY_CHANNEL),
            "messages": [_ref("channels", REPLY_CHANNEL, "messages", Reply.__name__)],
        }
    return operation


def _channel_id(model: type[Message]) -> str:
    return re.sub(r"[{}]", "", model.routing_key)


def build_document(roles: Roles) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every message the services consume or produce, with who
    does which, in a stable order."""
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    exchange = {"name": EXCHANGE, "type": "topic", "durable": True, "autoDelete": False}
    for model in roles.messages:
        _put(messages, model.__name__, _message(model, roles, schemas))
        channel = {
            "address": model.routing_key,
            "messages": {model.__name__: _ref("components", "messages", model.__name__)},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": exchange,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        }
        # `host.{host_id}.template.download` is addressed to one agent; AsyncAPI calls that a
        # channel parameter, and channel ids may not contain braces.
        parameters = re.findall(r"\{(\w+)\}", model.routing_key)
        if parameters:
            channel["parameters"] = {
                name: {"description": f"The {name} the message is addressed to."}
                for name in parameters
            }
        channel_id = _channel_id(model)
        _put(channels, channel_id, channel)
        sides = [("send", s) for s in roles.producers.get(model, ())]
        sides += [("receive", s) for s in roles.consumers.get(model, ())]
        for action, service in sides:
            _put(
                operations,
                f"{service}.{action}.{channel_id}",
                _operation(action, service, model),
            )
    _put(messages, Reply.__name__, _envelope(Reply, REPLY_TYPE, schemas))
    _put(
        channels,
        REPLY_CHANNEL,
        {
            "address": None,
            "description": "The queue named by a command's `reply_to`, via the default exchange.",
            "messages": {Reply.__name__: _ref("components", "messages", Reply.__name__)},
        },
    )
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "directdl", "version": version("directdl"), "description": DESCRIPTION},
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            SERVER: {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "RabbitMQ; every service and the CLI connect here.",
            }
        },
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "messages": dict(sorted(messages.items())),
        },
    }


def render_files(roles: Roles) -> dict[str, str]:
    """The generated files by name, exactly as they are checked in under docs/."""
    doc = build_document(roles)
    return {
        JSON_FILE: json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
        MARKDOWN_FILE: render_markdown(doc),
    }
