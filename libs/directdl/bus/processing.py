"""Turns a delivery into a handler call inside one transaction: inbox, state, outbox, reply."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError

from directdl.bus.delivery import ACKED, Delivery, Outcome, Verdict, new_message_id
from directdl.bus.refusals import describe, field_errors
from directdl.bus.store import MessageStore, Outgoing, Processed
from directdl.contracts.base import CONTENT_TYPE, Message
from directdl.contracts.errors import ErrorCode, MessageError
from directdl.contracts.reply import Reply
from directdl.runtime import metrics
from directdl.runtime.faults import Faults
from directdl.runtime.uow import MessageContext, UnitOfWork
from directdl.settings_catalog import MAX_MESSAGE_BYTES, default_of

# The namespace of the ids of answers nothing records (refusals, give_up): see _answer_only.
ANSWER_IDS = uuid.UUID("5c3e4f0e-7c1d-4d55-9c5e-2f2a8d0b6a11")
log = structlog.get_logger(__name__)


class Deferred:
    """Returned by a handler that answers later, through `uow.reply`, when the work is done."""


DEFERRED = Deferred()

HandlerResult = BaseModel | dict[str, Any] | Deferred | None
Handler = Callable[[Any, Any], HandlerResult]


@dataclass(frozen=True)
class Route:
    """A bound entry of a service's dispatch table (see `dispatch.On`): the model, its
    handler with the dependencies injected, and what that handler may publish."""

    model: type[Message]
    handler: Handler
    idempotent: bool = False
    emits: frozenset[type[Message]] = frozenset()


class UndeclaredMessage(RuntimeError):
    """Work published a message its dispatch table does not list: the generated reference
    and the broker permissions would be wrong, so the work fails instead."""


def check_emits(work: str, allowed: frozenset[type[Message]], outgoing: list[Any]) -> None:
    undeclared = sorted({type(m).__name__ for m, _key in outgoing if type(m) not in allowed})
    if undeclared:
        raise UndeclaredMessage(
            f"{work} published {', '.join(undeclared)}, which its dispatch table does not list"
        )


class Processor:
    """Validates at the edge, so handlers only ever see valid models."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        uow_factory: Callable[[], UnitOfWork],
        store: MessageStore,
        exchange: str,
        on_commit: Callable[[], None] = lambda: None,
        faults: Faults | None = None,
        service: str = "",
        max_body_bytes: Callable[[], int] | None = None,
    ) -> None:
        self.service = service
        # Read on each delivery, so that a change of the setting applies without a restart.
        default = int(default_of(MAX_MESSAGE_BYTES))
        self.max_body_bytes = max_body_bytes or (lambda: default)
        self.routes = routes
        self.uow_factory = uow_factory
        self.store = store
        self.exchange = exchange
        self.on_commit = on_commit
        self.faults = faults or Faults()

    def process(self, delivery: Delivery) -> Outcome:
        started = time.monotonic()
        try:
            command = self._validate(delivery)
        except MessageError as err:
            log.warning("message.invalid", code=err.code, error=err.message)
            self._answer_only(delivery, Reply.from_error(err))
            return Outcome(Verdict.DEAD_LETTER, err.message)
        if not self._sender_allowed(delivery, command):
            return ACKED
        try:
            outcome = self._handle(delivery, command)
        except Exception as err:
            log.exception("message.failed", attempt=delivery.attempt)
            return Outcome(Verdict.RETRY, f"{type(err).__name__}: {err}")
        log.debug("message.handled", duration_ms=round((time.monotonic() - started) * 1000, 1))
        return outcome

    def _sender_allowed(self, delivery: Delivery, message: Message) -> bool:
        """Only the sender the contract names is believed; RabbitMQ vouches for `user_id`.
        A forgery is acked and dropped: retrying or answering it would only serve its sender."""
        refusal = message.sent_by.refusal(delivery.user_id, message)
        if refusal is None:
            return True
        metrics.rejected.labels(self.service, delivery.routing_key, "sender").inc()
        log.warning(
            "message.sender_refused",
            claimed=refusal.required,
            sender=refusal.sender,
            error=str(refusal),
        )
        return False

    def give_up(self, delivery: Delivery, error: str) -> None:
        """After the last attempt: answer INTERNAL. Not recorded, so a replay from the DLQ runs.
        The error stays in the log: its text may hold SQL, paths or a caller's data."""
        log.error("message.gave_up", attempts=delivery.attempt, error=error)
        where = f"the {self.service} service's log" if self.service else "the service's log"
        message = (
            f"{delivery.routing_key} failed after {delivery.attempt} attempts; "
            f"see {where}, message_id {delivery.message_id}"
        )
        self._answer_only(delivery, Reply.failure(ErrorCode.INTERNAL, message))

    def _validate(self, delivery: Delivery) -> Message:
        route = self.routes.get(delivery.routing_key)
        if route is None:
            raise MessageError(
                f"no handler for routing key {delivery.routing_key!r} here",
                code=ErrorCode.UNSUPPORTED,
                details={"routing_key": delivery.routing_key},
            )
        if not delivery.message_id:
            raise MessageError(
                "the message_id property is required: it is the idempotency key",
                code=ErrorCode.INVALID_MESSAGE,
                details={"property": "message_id"},
            )
        if delivery.content_type not in (None, "", CONTENT_TYPE):
            raise MessageError(
                f"content_type {delivery.content_type!r} is not {CONTENT_TYPE}",
                code=ErrorCode.INVALID_MESSAGE,
                details={"property": "content_type", "value": delivery.content_type},
            )
        for name in ("message_id", "correlation_id", "reply_to"):
            if "\x00" in (getattr(delivery, name) or ""):
                raise MessageError(
                    f"the {name} property contains a NUL character",
                    code=ErrorCode.INVALID_MESSAGE,
                    details={"property": name},
                )
        size, limit = len(delivery.body or b""), self.max_body_bytes()
        if size > limit:
            # Refused unread: parsing it is the cost, and quoting any of it would echo it.
            raise MessageError(
                f"the {delivery.routing_key} body is {size} bytes; at most {limit} are accepted "
                f"({MAX_MESSAGE_BYTES})",
                code=ErrorCode.INVALID_MESSAGE,
                details={"size": size, "limit": limit},
            )
        try:
            return route.model.model_validate_json(delivery.body or b"null")
        except ValidationError as err:
            raise MessageError(
                describe(delivery.routing_key, err),
                code=ErrorCode.INVALID_MESSAGE,
                details={"errors": field_errors(err)},
            ) from err

    def _handle(self, delivery: Delivery, command: Message) -> Outcome:
        assert delivery.message_id is not None  # checked by _validate
        route = self.routes[delivery.routing_key]
        with self.uow_factory() as uow:
            seen = (
                None
                if route.idempotent
                else self.store.find_processed(uow.session, delivery.message_id)
            )
            if seen is not None:
                self._answer_duplicate(uow, delivery, seen)
                return ACKED
            uow.message = MessageContext(
                delivery.message_id,
                delivery.routing_key,
                delivery.reply_to,
                delivery.correlation_id,
            )
            reply: Reply | None
            try:
                result = route.handler(command, uow)
                check_emits(delivery.routing_key, route.emits, uow.outgoing)
                reply = None if isinstance(result, Deferred) else Reply.success(result)
            except MessageError as err:
                log.debug("message.rejected", code=err.code, error=err.message)
                uow.rollback()
                reply = Reply.from_error(err)
            self.flush_outgoing(uow, cause=delivery)
            if not route.idempotent:
                self._record(uow, delivery, reply)
            elif delivery.reply_to and reply is not None:
                self.store.enqueue(uow.session, self._reply(delivery, reply.to_json()))
            self.faults.reach("before_commit")
            uow.commit()
        self.on_commit()
        return ACKED

    def flush_outgoing(self, uow: UnitOfWork, cause: Delivery | None = None) -> None:
        """Write what the handler emitted and answered into the outbox, in its transaction."""
        correlation_id = cause.correlation_id or cause.message_id if cause else None
        for message, routing_key in uow.outgoing:
            self.store.enqueue(
                uow.session,
                Outgoing(
                    message_id=new_message_id(),
                    exchange=self.exchange,
                    routing_key=routing_key,
                    body=message.model_dump_json().encode(),
                    correlation_id=correlation_id,
                ),
            )
        for later in uow.replies:
            self.store.enqueue(
                uow.session,
                Outgoing(
                    new_message_id(),
                    "",
                    later.reply_to,
                    later.reply.to_json(),
                    later.correlation_id,
                ),
            )
        uow.outgoing, uow.replies = [], []

    def _record(self, uow: UnitOfWork, delivery: Delivery, reply: Reply | None) -> None:
        assert delivery.message_id is not None
        body = reply.to_json() if reply else None
        self.store.record_processed(
            uow.session,
            Processed(
                delivery.message_id,
                delivery.routing_key,
                delivery.reply_to,
                delivery.correlation_id,
                body,
            ),
        )
        if delivery.reply_to and body is not None:
            self.store.enqueue(uow.session, self._reply(delivery, body))

    def _answer_duplicate(self, uow: UnitOfWork, delivery: Delivery, seen: Processed) -> None:
        # A redelivery of the same message was answered when it was first committed; a new
        # send that reuses the message_id is a different request and gets the stored answer.
        same_request = (seen.reply_to, seen.correlation_id) == (
            delivery.reply_to,
            delivery.correlation_id,
        )
        log.debug("message.duplicate", same_request=same_request)
        if delivery.reply_to and not same_request and seen.reply is not None:
            self.store.enqueue(uow.session, self._reply(delivery, seen.reply))
            uow.commit()
            self.on_commit()

    def _answer_only(self, delivery: Delivery, reply: Reply) -> None:
        # A NUL in the reply's address cannot be stored in the outbox, nor routed anyway.
        if not delivery.reply_to or "\x00" in delivery.reply_to + (delivery.correlation_id or ""):
            return
        answer = self._reply(delivery, reply.to_json())
        if delivery.message_id is not None:
            # Nothing records these answers in the inbox, so the same delivery coming back
            # (redelivered after a crash, or a dead-letter replayed) would be answered again:
            # an id of its own derived from it lets the outbox take one answer only.
            seed = "\x1f".join(
                (delivery.message_id, delivery.reply_to, answer.correlation_id or "")
            )
            answer = replace(answer, message_id=str(uuid.uuid5(ANSWER_IDS, seed)))
        with self.uow_factory() as uow:
            if not self.store.holds(uow.session, answer.message_id):
                self.store.enqueue(uow.session, answer)
                uow.commit()
        self.on_commit()

    def _reply(self, delivery: Delivery, body: bytes) -> Outgoing:
        assert delivery.reply_to is not None
        return Outgoing(
            message_id=new_message_id(),
            exchange="",
            routing_key=delivery.reply_to,
            body=body,
            correlation_id=delivery.correlation_id,
        )
