"""Render the generated AsyncAPI document as a Markdown message reference for people."""

from __future__ import annotations

import json
import re
from typing import Any

from directdl.contracts.errors import ErrorCode

_NONE = "—"


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _deref(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = _resolve(doc, node["$ref"])
    return node


def _ref_name(node: dict[str, Any]) -> str:
    return str(node["$ref"]).rsplit("/", 1)[-1]


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _text(text: str) -> str:
    """Free text from a docstring or description, safe inside Markdown and its tables."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    return _text(" ".join(text.split())).replace("|", "\\|") or _NONE


def _code(values: list[Any]) -> str:
    return ", ".join(f"`{v}`" for v in values) or _NONE


def _type(node: dict[str, Any], anchors: dict[str, str]) -> str:
    if "$ref" in node:
        name = _ref_name(node)
        return f"[{name}](#{anchors[name]})" if name in anchors else name
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return " or ".join(_type(branch, anchors) for branch in node[key])
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " or ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    return _plain_type(node, anchors)


def _plain_type(node: dict[str, Any], anchors: dict[str, str]) -> str:
    kind = node.get("type", "any")
    if kind == "array" and "items" in node:
        kind = f"array of {_type(node['items'], anchors)}"
    elif kind == "object" and isinstance(node.get("additionalProperties"), dict):
        kind = f"map of string to {_type(node['additionalProperties'], anchors)}"
    elif isinstance(kind, list):
        kind = " or ".join(map(str, kind))
    return f"{kind} ({node['format']})" if "format" in node else str(kind)


_BOUNDS = (
    ("minimum", "minimum {}"),
    ("exclusiveMinimum", "greater than {}"),
    ("maximum", "maximum {}"),
    ("exclusiveMaximum", "less than {}"),
    ("pattern", "matches `{}`"),
)


def _count(low: int | None, high: int | None, unit: str) -> list[str]:
    def units(n: int) -> str:
        return f"{n} {unit}" if n == 1 else f"{n} {unit}s"

    if low is not None and high is not None:
        return [f"{low} to {units(high)}"]
    if low is not None:
        return [f"at least {units(low)}"]
    return [f"at most {units(high)}"] if high is not None else []


def _constraints(node: dict[str, Any]) -> list[str]:
    """The validation keywords of a field, and of each branch of a union."""
    found: list[str] = []
    for branch in [node, *node.get("anyOf", []), *node.get("oneOf", [])]:
        found += _count(branch.get("minLength"), branch.get("maxLength"), "character")
        found += _count(branch.get("minItems"), branch.get("maxItems"), "item")
        found += [text.format(branch[key]) for key, text in _BOUNDS if key in branch]
    return list(dict.fromkeys(found))


def _notes(node: dict[str, Any]) -> str:
    description = node.get("description", "").strip()
    if description and not description.endswith("."):
        description += "."
    rules = _constraints(node)
    if "default" in node:
        rules.append(f"default `{json.dumps(node['default'])}`")
    if rules:
        rules[0] = rules[0][0].upper() + rules[0][1:]
        description = f"{description} {', '.join(rules)}.".strip()
    return _cell(description)


def _fields(schema: dict[str, Any], anchors: dict[str, str]) -> list[str]:
    properties: dict[str, Any] = schema.get("properties", {})
    if not properties:
        return ["No fields."]
    required = set(schema.get("required", []))
    rows = ["| Field | Type | Required | Description |", "| --- | --- | --- | --- |"]
    for name, prop in properties.items():
        needed = "yes" if name in required else "no"
        rows.append(f"| `{name}` | {_cell(_type(prop, anchors))} | {needed} | {_notes(prop)} |")
    return rows


def _headers(message: dict[str, Any]) -> dict[str, Any]:
    """The `$ref` to the shared AMQP properties schema of a message."""
    headers: dict[str, Any] = message["headers"]
    return headers["allOf"][0] if "allOf" in headers else headers


def _section(title: str, description: str, table: list[str]) -> list[str]:
    return ["", title, *(["", _text(description)] if description else []), "", *table]


def _message(
    key: str, m: dict[str, Any], payload: dict[str, Any], anchors: dict[str, str]
) -> list[str]:
    kind = m["tags"][0]["name"]
    facts = [f"{kind.capitalize()} `{m['name']}`"]
    if m["x-consumers"]:
        facts.append(f"consumed by {_code(m['x-consumers'])}")
    if m["x-producers"]:
        facts.append(f"produced by {_code(m['x-producers'])}")
    if m.get("x-emits"):
        facts.append(f"emits {_code(m['x-emits'])}")
    facts.append(f"believed only from {m['x-sent-by']}")
    described = "; ".join(facts) + "."
    if "description" in m:
        described += f"\n\n{m['description']}"
    return _section(f"### `{key}`", described, _fields(payload, anchors))


def render_markdown(doc: dict[str, Any]) -> str:
    """The message reference: routing keys, envelope, reply, error codes, messages and types."""
    schemas: dict[str, Any] = doc["components"]["schemas"]
    channels = sorted(
        (c for c in doc["channels"].values() if c.get("address")), key=lambda c: c["address"]
    )
    bus = [(c["address"], _deref(doc, next(iter(c["messages"].values())))) for c in channels]
    replies = [op["reply"] for op in doc["operations"].values() if "reply" in op]
    reply = _deref(doc, replies[0]["messages"][0]) if replies else None

    # Where each schema is shown, so that a field's type can link to it.
    anchors = {_ref_name(m["payload"]): _slug(f"`{key}`") for key, m in bus}
    anchors |= {_ref_name(_headers(m)): "envelope" for _, m in bus[:1]}
    if reply is not None:
        anchors[_ref_name(reply["payload"])] = "reply"
    types = sorted(set(schemas) - set(anchors))
    anchors |= {name: _slug(name) for name in types}

    info = doc["info"]
    out = [
        f"# {info['title']} message reference",
        "",
        f"Generated from the contract models (AsyncAPI {doc['asyncapi']}, version "
        f"{info['version']}: [asyncapi.json](asyncapi.json)) by "
        "`python -m directdl.contracts.asyncapi`. Do not edit: run `make docs`.",
        "",
        _text(info["description"].rstrip()),
        "",
        "## Routing keys",
        "",
        "| Routing key | Kind | Consumers | Producers | Emits |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, m in bus:
        kind = m["tags"][0]["name"]
        emits = _code(m.get("x-emits", [])) if kind == "command" else _NONE
        out.append(
            f"| [`{key}`](#{_slug(f'`{key}`')}) | {kind} | {_code(m['x-consumers'])} "
            f"| {_code(m['x-producers'])} | {emits} |"
        )
    if bus:
        props = _deref(doc, _headers(bus[0][1]))
        out += _section("## Envelope", props.get("description", ""), _fields(props, anchors))
    if reply is not None:
        reply_type = reply["bindings"]["amqp"]["messageType"]
        sent = (
            f"It goes to the command's `reply_to` queue through the default exchange, with the "
            f"[envelope](#envelope) properties: `type` is `{reply_type}` and `correlation_id` "
            "is the command's."
        )
        described = f"{reply.get('description', '')}\n\n{sent}".strip()
        out += _section("## Reply", described, _fields(_deref(doc, reply["payload"]), anchors))
    if ErrorCode.__name__ in schemas:
        codes = [f"- `{code}`" for code in schemas[ErrorCode.__name__]["enum"]]
        out += _section("## Error codes", "An error reply's `error.code` is one of:", codes)
    out += ["", "## Messages"]
    for key, m in bus:
        out += _message(key, m, _deref(doc, m["payload"]), anchors)
    out += ["", "## Types"]
    for name in types:
        schema = schemas[name]
        body = (
            [f"One of {_code(schema['enum'])}."] if "enum" in schema else _fields(schema, anchors)
        )
        out += _section(f"### {name}", schema.get("description", ""), body)
    return "\n".join(out) + "\n"
