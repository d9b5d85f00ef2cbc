"""Who consumes and who produces each message, as the services' dispatch tables say."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from directdl.contracts.base import Message


@dataclass(frozen=True)
class Roles:
    """Derived from the tables, never written by hand: the source of the message reference,
    the AsyncAPI operations and the broker permissions."""

    consumers: Mapping[type[Message], tuple[str, ...]]
    producers: Mapping[type[Message], tuple[str, ...]]
    # What each command may lead to, over every service that handles it.
    emits: Mapping[type[Message], tuple[type[Message], ...]]

    @property
    def messages(self) -> tuple[type[Message], ...]:
        """Every message some service consumes or produces, by routing key."""
        return tuple(sorted({*self.consumers, *self.producers}, key=lambda m: m.routing_key))

    def by_routing_key(self) -> dict[str, type[Message]]:
        return {model.routing_key: model for model in self.messages}
