"""An in-memory bus for unit tests of handlers: the same processing, no broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.delivery import Delivery, Outcome
from directdl.bus.dispatch import BoundTimer, Handlers
from directdl.bus.processing import BatchRoute, Processor, Route, check_emits
from directdl.bus.store import MessageStore
from directdl.bus.topology import topic_matches
from directdl.contracts.base import Command, Message
from directdl.contracts.reply import Reply
from directdl.contracts.senders import HostNamed, Services, host_user
from directdl.runtime.uow import UnitOfWork

MEMORY_REPLY_TO = "memory.reply"


# Who sends raw bytes, unless a test says otherwise: an operator, as the CLI would.
OPERATOR = "cli"


def rightful_sender(message: Message) -> str:
    """The broker user the contract believes for this message."""
    rule = message.sent_by
    if isinstance(rule, HostNamed):
        return host_user(str(getattr(message, rule.field)))
    if isinstance(rule, Services):
        return rule.names[0]
    return OPERATOR


class InMemoryBus:
    """Runs a service's Processor directly and reads its outbox back as replies and events."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        uow_factory: Callable[[], UnitOfWork],
        store: MessageStore,
        sessions: sessionmaker[Session],
        exchange: str = "directdl",
        batch_routes: Mapping[str, BatchRoute] | None = None,
    ) -> None:
        self.processor = Processor(routes, uow_factory, store, exchange, batch_routes=batch_routes)
        self.uow_factory = uow_factory
        self.timers: dict[str, BoundTimer] = {}
        self.store = store
        self.sessions = sessions
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.outcomes: list[Outcome] = []
        self._replies: dict[str, Reply] = {}

    @classmethod
    def serving(
        cls,
        handlers: Handlers,
        dependencies: Mapping[str, Any],
        uow_factory: Callable[[], UnitOfWork],
        store: MessageStore,
        sessions: sessionmaker[Session],
        address: Mapping[str, str] | None = None,
    ) -> InMemoryBus:
        """A bus for a service's dispatch table, bound as `bootstrap()` would bind it."""
        bound = handlers.bind(dependencies, address or {})
        bus = cls(bound.routes, uow_factory, store, sessions, batch_routes=bound.batch_routes)
        bus.timers = bound.timers
        return bus

    def tick(self, timer: str) -> None:
        """Run a timer of the table once, as the service does: in one transaction, refusing
        what its entry does not list, through the outbox."""
        bound = self.timers[timer]
        with self.uow_factory() as uow:
            bound.run(uow)
            check_emits(timer, bound.emits, uow.outgoing)
            self.processor.flush_outgoing(uow)
            uow.commit()
        self.drain_outbox()

    def call(self, command: Command, message_id: str | None = None) -> Reply:
        body = command.model_dump_json(exclude_none=True).encode()
        return self.call_raw(command.routing_key, body, message_id=message_id)

    def call_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None, **_: Any
    ) -> Reply:
        correlation_id = self.submit_raw(routing_key, body, message_id=message_id)
        reply = self.reply_for(correlation_id)
        assert reply is not None, f"{routing_key} was not answered (is its reply deferred?)"
        return reply

    def submit(
        self, message: Message, routing_key: str | None = None, *, user_id: str | None = None
    ) -> str:
        """Deliver without waiting for an answer; returns the correlation id to ask later.
        `user_id` is the broker user it comes from, as RabbitMQ would vouch; by default the
        one the contract believes, so that a test of a forgery names its forger."""
        body = message.model_dump_json(exclude_none=True).encode()
        sender = user_id or rightful_sender(message)
        return self.submit_raw(routing_key or message.routing_key, body, user_id=sender)

    def submit_many(
        self, messages: Sequence[Message], *, user_id: str | None = None
    ) -> list[Outcome]:
        """Deliver several messages as one batch, as the consumer hands a batched queue's
        deliveries to their handlers; returns each one's outcome."""
        deliveries = [
            Delivery(
                routing_key=message.routing_key,
                body=message.model_dump_json(exclude_none=True).encode(),
                message_id=str(uuid.uuid4()),
                user_id=user_id or rightful_sender(message),
            )
            for message in messages
        ]
        outcomes = self.processor.process_batch(deliveries)
        self.outcomes.extend(outcomes)
        self.drain_outbox()
        return outcomes

    def submit_raw(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        user_id: str | None = OPERATOR,
    ) -> str:
        correlation_id = str(uuid.uuid4())
        delivery = Delivery(
            routing_key=routing_key,
            body=body,
            message_id=message_id or str(uuid.uuid4()),
            correlation_id=correlation_id,
            reply_to=MEMORY_REPLY_TO,
            user_id=user_id,
        )
        self.outcomes.append(self.processor.process(delivery))
        self.drain_outbox()
        return correlation_id

    def reply_for(self, correlation_id: str) -> Reply | None:
        self.drain_outbox()
        return self._replies.pop(correlation_id, None)

    def published(self, pattern: str = "#") -> list[dict[str, Any]]:
        """Bodies of the events whose routing key matches an AMQP topic pattern."""
        return [body for key, body in self.events if topic_matches(pattern, key)]

    def drain_outbox(self) -> None:
        with self.sessions() as session:
            for message in self.store.pending(session):
                assert message.id is not None
                if message.exchange == "":
                    reply = Reply.model_validate_json(message.body)
                    self._replies[message.correlation_id or ""] = reply
                else:
                    self.events.append((message.routing_key, json.loads(message.body)))
                self.store.mark_sent(session, message.id)
            session.commit()
