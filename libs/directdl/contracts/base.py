"""Base classes for every message on the bus: commands, events and their routing keys."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

EXCHANGE = "directdl"
CONTENT_TYPE = "application/json"
# The AMQP `type` property of a reply; every other message carries its routing key there.
REPLY_TYPE = "reply"


class Result(BaseModel):
    """The `result` of a successful reply."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(BaseModel):
    """A message body. The routing key is declared once, on the class."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    # A fixed key, or a template such as `host.{host_id}.template.download` for messages
    # addressed to one instance; `address()` fills it in.
    routing_key: ClassVar[str]
    # Who consumes it and what it leads to; feeds the generated message reference.
    consumers: ClassVar[tuple[str, ...]] = ()
    producers: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def address(cls, **params: str) -> str:
        return cls.routing_key.format(**params)


class Command(Message):
    """An instruction, named in the imperative; it may expect a reply."""

    emits: ClassVar[tuple[str, ...]] = ()
    # The shape of `result` in a successful reply.
    result: ClassVar[type[Result] | None] = None


class Event(Message):
    """A fact that happened, named in the past tense; broadcast to anyone bound."""
