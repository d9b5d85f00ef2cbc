"""Base classes for every message on the bus: commands, events and their routing keys."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from directdl.contracts.bounds import nul_at
from directdl.contracts.senders import ANY_OPERATOR, SenderRule

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
    # Whose validated `user_id` the consumer believes; anything else is dropped unread.
    sent_by: ClassVar[SenderRule] = ANY_OPERATOR

    @classmethod
    def address(cls, **params: str) -> str:
        return cls.routing_key.format(**params)

    @model_validator(mode="after")
    def _no_nul(self) -> Self:
        # PostgreSQL text cannot hold NUL, and no name, id or header needs one; checked here
        # once for every field, nested ones and map keys included, so none can be forgotten.
        where = nul_at(self)
        if where is not None:
            raise PydanticCustomError(
                "nul_character",
                "{field} contains a NUL character, which no field may hold",
                {"field": where},
            )
        return self


class Command(Message):
    """An instruction, named in the imperative; it may expect a reply."""

    # Who consumes it and what it leads to are not declared here: the services' dispatch
    # tables say so, and the message reference is generated from them (contracts.roles).
    # The shape of `result` in a successful reply.
    result: ClassVar[type[Result] | None] = None


class Event(Message):
    """A fact that happened, named in the past tense; broadcast to anyone bound."""
