"""Turns a delivery into a handler call inside one transaction: inbox, state, outbox, reply."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog
from pydantic import BaseModel

from directdl.bus.delivery import ACKED, Delivery, Outcome, Verdict, new_message_id
from directdl.bus.edge import validate
from directdl.bus.store import MessageStore, Outgoing, Processed
from directdl.contracts.base import Message
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


@dataclass(frozen=True)
class BatchRoute:
    """A bound batched entry (see `dispatch.OnBatch`): `handler(models, uow)`."""

    model: type[Message]
    handler: Callable[[list[Any], Any], None]
    emits: frozenset[type[Message]] = frozenset()


# A handler slower than this (it waited on the network) ends its group's transaction.
SLOW_HANDLER_SECONDS = 0.02


class _Alone(Exception):
    """A group holds a delivery that must be processed by itself."""


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
        batch_routes: Mapping[str, BatchRoute] | None = None,
    ) -> None:
        self.service = service
        # Read on each delivery, so that a change of the setting applies without a restart.
        default = int(default_of(MAX_MESSAGE_BYTES))
        self.max_body_bytes = max_body_bytes or (lambda: default)
        self.routes = routes
        self.batch_routes: Mapping[str, BatchRoute] = batch_routes or {}
        self.uow_factory = uow_factory
        self.store = store
        self.exchange = exchange
        # Called after a commit that put something in the outbox: the relay's wake-up.
        self.on_commit = on_commit
        self.faults = faults or Faults()

    def process(self, delivery: Delivery) -> Outcome:
        if delivery.routing_key in self.batch_routes:
            return self.process_batch([delivery])[0]
        # Every log line of this delivery names it; the worker unbinds them when done.
        structlog.contextvars.bind_contextvars(
            message_id=delivery.message_id,
            correlation_id=delivery.correlation_id,
            routing_key=delivery.routing_key,
        )
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

    def process_group(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Several deliveries of one-at-a-time routes, each handled as `process` would, all in
        one transaction: one commit, one fsync. Anything unusual in the group (a refusal, a
        duplicate, a handler's error) rolls it back, and then each is processed alone: what
        commits is always what `process` would have committed."""
        outcomes: list[Outcome] = []
        while len(outcomes) < len(deliveries):
            rest = deliveries[len(outcomes) :]
            if len(rest) == 1:
                outcomes.append(self.process(rest[0]))
                continue
            try:
                outcomes.extend(self._handle_group(rest))
            except Exception as err:
                log.debug("group.handled_alone", deliveries=len(rest), why=type(err).__name__)
                outcomes.extend(self.process(delivery) for delivery in rest)
        return outcomes

    def _handle_group(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """The group's first deliveries handled and committed together, up to and including
        a handler after the first that was slow (a URL check): it waited holding SQLite's one
        writer, taken at the group's first write, so the transaction ends there rather than
        hold it through the next slow one as well."""
        enqueued = handled = 0
        slow = False
        with self.uow_factory() as uow:
            # A redelivery is answered from the inbox, which `process` does.
            if self.store.any_processed(uow.session, [d.message_id or "" for d in deliveries]):
                raise _Alone("a duplicate")
            for delivery in deliveries:
                if slow:
                    break
                handled += 1
                started = time.monotonic()
                command = self._validate(delivery)
                route = self.routes.get(delivery.routing_key)
                if route is None or command.sent_by.refusal(delivery.user_id, command):
                    raise _Alone("a batched route or a refused sender")
                assert delivery.message_id is not None  # checked by _validate
                structlog.contextvars.bind_contextvars(
                    message_id=delivery.message_id,
                    correlation_id=delivery.correlation_id,
                    routing_key=delivery.routing_key,
                )
                uow.message = MessageContext(
                    delivery.message_id,
                    delivery.routing_key,
                    delivery.reply_to,
                    delivery.correlation_id,
                )
                result = route.handler(command, uow)
                # Not the first: it may have waited for the writer, not for the network.
                slow = handled > 1 and time.monotonic() - started > SLOW_HANDLER_SECONDS
                check_emits(delivery.routing_key, route.emits, uow.outgoing)
                reply = None if isinstance(result, Deferred) else Reply.success(result)
                enqueued += self._write_out(uow, delivery, route, reply)
            self.faults.reach("before_commit")
            uow.commit()
        if enqueued:
            self.on_commit()
        return [ACKED] * handled

    def process_batch(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Many deliveries of batched routes in one transaction, an outcome for each, in order.
        Refusals are settled one by one, as in `process`; the rest are handed to their
        handlers grouped by routing key and committed once. When that transaction fails, each
        is handled alone, so that a poison message fails alone."""
        outcomes: list[Outcome | None] = [None] * len(deliveries)
        # Consecutive deliveries of one key, in the order they came: a host's inventory and
        # the heartbeat after it that carries its digest are applied in that order.
        runs: list[tuple[str, list[tuple[int, Message]]]] = []
        for index, delivery in enumerate(deliveries):
            try:
                message = self._validate(delivery)
            except MessageError as err:
                log.warning(
                    "message.invalid",
                    code=err.code,
                    error=err.message,
                    routing_key=delivery.routing_key,
                    message_id=delivery.message_id,
                )
                self._answer_only(delivery, Reply.from_error(err))
                outcomes[index] = Outcome(Verdict.DEAD_LETTER, err.message)
                continue
            if not self._sender_allowed(delivery, message):
                outcomes[index] = ACKED
            elif delivery.routing_key not in self.batch_routes:
                outcomes[index] = self.process(delivery)  # a route of its own, one at a time
            elif runs and runs[-1][0] == delivery.routing_key:
                runs[-1][1].append((index, message))
            else:
                runs.append((delivery.routing_key, [(index, message)]))
        if runs:
            try:
                self._handle_batch(runs, cause=None)
                for _key, members in runs:
                    for index, _message in members:
                        outcomes[index] = ACKED
            except Exception:
                log.exception("batch.failed", deliveries=sum(len(m) for _k, m in runs))
                for key, members in runs:
                    for index, message in members:
                        outcomes[index] = self._handle_alone(deliveries[index], key, message)
        return [outcome or ACKED for outcome in outcomes]

    def _handle_batch(
        self, runs: Sequence[tuple[str, list[tuple[int, Message]]]], cause: Delivery | None
    ) -> None:
        enqueued = 0
        with self.uow_factory() as uow:
            for key, members in runs:
                route = self.batch_routes[key]
                route.handler([message for _index, message in members], uow)
                check_emits(key, route.emits, uow.outgoing)
                enqueued += self.flush_outgoing(uow, cause=cause)
            self.faults.reach("before_commit")
            uow.commit()
        if enqueued:
            self.on_commit()

    def _handle_alone(self, delivery: Delivery, key: str, message: Message) -> Outcome:
        structlog.contextvars.bind_contextvars(
            message_id=delivery.message_id, correlation_id=delivery.correlation_id
        )
        try:
            self._handle_batch([(key, [(0, message)])], cause=delivery)
        except MessageError as err:
            # An expected refusal: nobody waits for an answer to an event, so it is dropped.
            log.warning("message.rejected", code=err.code, error=err.message)
            return ACKED
        except Exception as err:
            log.exception("message.failed", attempt=delivery.attempt)
            return Outcome(Verdict.RETRY, f"{type(err).__name__}: {err}")
        finally:
            structlog.contextvars.unbind_contextvars("message_id", "correlation_id")
        return ACKED

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
        route = self.routes.get(delivery.routing_key) or self.batch_routes.get(delivery.routing_key)
        return validate(delivery, route.model if route else None, self.max_body_bytes())

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
            enqueued = self._write_out(uow, delivery, route, reply)
            self.faults.reach("before_commit")
            uow.commit()
        if enqueued:
            self.on_commit()
        return ACKED

    def _write_out(
        self, uow: UnitOfWork, delivery: Delivery, route: Route, reply: Reply | None
    ) -> int:
        """What the handler emitted, its reply and its inbox row, into its transaction;
        returns how many messages went into the outbox."""
        enqueued = self.flush_outgoing(uow, cause=delivery)
        if not route.idempotent:
            enqueued += self._record(uow, delivery, reply)
        elif delivery.reply_to and reply is not None:
            self.store.enqueue(uow.session, self._reply(delivery, reply.to_json()))
            enqueued += 1
        return enqueued

    def flush_outgoing(self, uow: UnitOfWork, cause: Delivery | None = None) -> int:
        """Write what the handler emitted and answered into the outbox, in its transaction;
        returns how many messages that is."""
        correlation_id = cause.correlation_id or cause.message_id if cause else None
        count = len(uow.outgoing) + len(uow.replies)
        self.store.enqueue(
            uow.session,
            *(
                Outgoing(
                    message_id=new_message_id(),
                    exchange=self.exchange,
                    routing_key=routing_key,
                    body=message.model_dump_json().encode(),
                    correlation_id=correlation_id,
                )
                for message, routing_key in uow.outgoing
            ),
            *(
                Outgoing(
                    new_message_id(),
                    "",
                    later.reply_to,
                    later.reply.to_json(),
                    later.correlation_id,
                )
                for later in uow.replies
            ),
        )
        uow.outgoing, uow.replies = [], []
        return count

    def _record(self, uow: UnitOfWork, delivery: Delivery, reply: Reply | None) -> int:
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
            return 1
        return 0

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
            if self.store.holds(uow.session, answer.message_id):
                return
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
