"""The consumer loop: one I/O thread owns the connection, handlers run on worker threads.

Handlers may run for minutes (downloads do), so they never run on the thread that answers
heartbeats; they hand their ack back with `add_callback_threadsafe`, as in pika's
`basic_consumer_threaded.py`. A failed attempt is retried later by the broker, not by a
waiting worker: a copy goes to the queue's retry queue to wait out its back-off there.
When the broker goes away the loop reconnects with growing back-off, re-declares its
topology and resumes (pika's `asynchronous_consumer_example.py`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ConnectionWrongStateError
from pika.spec import Basic

from directdl.backoff import Backoff
from directdl.bus.batches import BATCH_PREFETCH, BatchedQueue
from directdl.bus.connection import (
    RECONNECTABLE,
    broker_user,
    connect,
    describe_error,
    redact,
)
from directdl.bus.delivery import Delivery, Outcome, Verdict, received
from directdl.bus.groups import Grouper
from directdl.bus.processing import Processor
from directdl.bus.publisher import ConfirmingPublisher
from directdl.bus.relay_thread import RelayThread
from directdl.bus.settle import Held, Settler
from directdl.bus.topology import Topology
from directdl.contracts.senders import SERVICES
from directdl.runtime import metrics
from directdl.runtime.faults import Faults

log = structlog.get_logger(__name__)

LAG_EVERY_SECONDS = 10.0
SHUTDOWN_GRACE_SECONDS = 30.0
RETRY_BACKOFF = Backoff(base=0.5, cap=10.0)


@dataclass(frozen=True)
class QueueSpec:
    """One of a service's queues: `<service>.<purpose>`, bound to these routing keys."""

    purpose: str
    bindings: tuple[str, ...]
    single_active_consumer: bool = False
    shared: bool = False  # `<purpose>`, consumed by every service, not `<service>.<purpose>`
    batched: bool = False  # handed to the handlers in batches, from a channel of its own


@dataclass(frozen=True)
class ConsumerConfig:
    url: str
    topology: Topology
    service: str
    queues: tuple[QueueSpec, ...]
    prefetch: int = 8
    workers: int = 4
    max_attempts: int = 3
    max_backoff_seconds: float = 30.0  # the longest wait before reconnecting
    # The wait before the n-th retry of a failed message, spent in the broker, not a worker.
    retry_backoff: Backoff = RETRY_BACKOFF

    @property
    def reconnect_backoff(self) -> Backoff:
        return Backoff(base=1.0, cap=self.max_backoff_seconds)


class Consumer:
    """Consumes one service queue until `stop` is set, surviving broker restarts."""

    def __init__(
        self,
        config: ConsumerConfig,
        processor: Processor,
        relay: RelayThread | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.config = config
        self.processor = processor
        self.relay = relay
        if relay is not None:
            relay.backoff = config.reconnect_backoff  # one policy for both connections
        self.faults = faults or Faults()
        self.connected = threading.Event()
        self.connections = 0  # successful connects: 1 unless the broker went away
        # The user_id of the copies this consumer republishes; RabbitMQ checks it.
        self.user = broker_user(config.url)
        self.settler = Settler(config.topology, config.service, self.user, config.retry_backoff)
        self._inflight = 0
        self._executor = ThreadPoolExecutor(config.workers, thread_name_prefix=config.service)
        # The relay publishes from its own thread and connection; a commit that put
        # something in the outbox wakes it.
        processor.on_commit = self.wake_relay
        # Called once when asked to stop, once in-flight work is done and before the last
        # flush of the outbox: a farewell event goes out.
        self.on_stopping: Callable[[], None] = lambda: None

    def wake_relay(self) -> None:
        """Something was committed to the outbox; publish it soon."""
        if self.relay is not None:
            self.relay.wake()

    def run(self, stop: threading.Event) -> None:
        attempt = 0
        if self.relay is not None:
            self.relay.start()
        try:
            while not stop.is_set():
                try:
                    connection = connect(self.config.url, self.config.service)
                except RECONNECTABLE as err:
                    attempt += 1
                    self._wait_before_reconnect(stop, attempt, err)
                    continue
                attempt = 0
                try:
                    self._serve(connection, stop)
                except RECONNECTABLE as err:
                    attempt += 1
                    self._wait_before_reconnect(stop, attempt, err)
                finally:
                    self.connected.clear()
                    if connection.is_open:
                        connection.close()
        finally:
            if self.relay is not None:
                self.relay.stop()
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _wait_before_reconnect(
        self, stop: threading.Event, attempt: int, err: BaseException
    ) -> None:
        delay = self.config.reconnect_backoff.delay(attempt)
        log.warning(
            "bus.disconnected",
            broker=redact(self.config.url),
            error=describe_error(err),
            retry_in_s=round(delay, 2),
        )
        stop.wait(delay)

    def _serve(self, connection: pika.BlockingConnection, stop: threading.Event) -> None:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=self.config.prefetch)
        publisher = ConfirmingPublisher(connection.channel())
        tags: list[tuple[BlockingChannel, str]] = []
        queues: list[str] = []
        # The one-at-a-time queues share the workers; what waits for one is grouped.
        grouper = Grouper(self.config.workers, self._executor)
        grouper.start = partial(self._work_group, connection, publisher, grouper)
        topology = self.config.topology
        for spec in self.config.queues:
            if spec.shared:
                queue = topology.declare_shared_queue(channel, spec.purpose, spec.bindings)
            else:
                queue = topology.declare_service_queue(
                    channel,
                    self.config.service,
                    spec.purpose,
                    spec.bindings,
                    single_active_consumer=spec.single_active_consumer,
                )
            # Any service taking turns on a shared queue may have put a retry copy in it.
            republishers = {self.user, *SERVICES} if spec.shared else {self.user}
            if spec.batched:
                # A channel of its own: a wide prefetch fills batches without crowding out
                # the other queues' deliveries.
                batch_channel = connection.channel()
                batch_channel.basic_qos(prefetch_count=BATCH_PREFETCH)
                batched = BatchedQueue(
                    connection, publisher, queue, self._executor, self._work_batch, self._settle
                )
                on_batched = partial(self._on_batched, batched, republishers)
                tag = batch_channel.basic_consume(queue, on_message_callback=on_batched)
                tags.append((batch_channel, tag))
            else:
                on_message = partial(self._on_message, grouper, queue, republishers)
                tags.append((channel, channel.basic_consume(queue, on_message_callback=on_message)))
            queues.append(queue)
            log.debug("bus.consuming", queue=queue, broker=redact(self.config.url))
        self._inflight = 0
        self.connections += 1
        self.connected.set()
        # Once per connection: a reconnect after `bus.disconnected` says it again.
        log.info("service.ready", queues=len(queues))
        last_lag = 0.0
        while not stop.is_set():
            connection.process_data_events(time_limit=0.2)
            now = time.monotonic()
            if now - last_lag > LAG_EVERY_SECONDS:
                self._measure_lag(channel, queues)
                last_lag = now
        # Stop consuming, let in-flight work finish and settle, say farewell, and have the
        # relay publish what all that committed before the connections close.
        for consuming, tag in tags:
            consuming.basic_cancel(tag)
        self._drain(connection)
        self.on_stopping()
        if self.relay is not None and not self.relay.finish(SHUTDOWN_GRACE_SECONDS):
            log.warning("outbox.unsent_at_stop", waited_s=SHUTDOWN_GRACE_SECONDS)

    def _measure_lag(self, channel: BlockingChannel, queues: list[str]) -> None:
        for queue in queues:
            waiting = channel.queue_declare(queue, passive=True).method.message_count
            metrics.queue_messages.labels(self.config.service, queue).set(waiting)

    def _drain(self, connection: pika.BlockingConnection) -> None:
        """Let in-flight handlers finish and their acks go out before closing."""
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        while self._inflight and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.2)

    def _on_message(
        self,
        grouper: Grouper,
        queue: str,
        republishers: set[str],
        channel: BlockingChannel,
        method: Basic.Deliver,
        props: pika.BasicProperties,
        body: bytes,
    ) -> None:
        delivery = _received(method, props, body, republishers)
        self._inflight += 1
        grouper.add(Held(channel, method.delivery_tag, queue, props, body, delivery))

    def _on_batched(
        self,
        batched: BatchedQueue,
        republishers: set[str],
        channel: BlockingChannel,
        method: Basic.Deliver,
        props: pika.BasicProperties,
        body: bytes,
    ) -> None:
        delivery = _received(method, props, body, republishers)
        self._inflight += 1
        batched.add(Held(channel, method.delivery_tag, batched.queue, props, body, delivery))

    def _work_batch(self, held: list[Held]) -> list[Outcome]:
        """On a worker: the batch's outcomes, after the one commit (or the one-by-one
        fallback), with the last failed attempts given up."""
        structlog.contextvars.bind_contextvars(service=self.config.service)
        deliveries = [h.delivery for h in held]
        started = time.monotonic()
        try:
            outcomes = self.processor.process_batch(deliveries)
            self.faults.reach("before_ack")
        except Exception as err:
            log.exception("batch.worker_failed", deliveries=len(deliveries))
            return [Outcome(Verdict.RETRY, f"{type(err).__name__}: {err}")] * len(deliveries)
        return [
            self._given_up(delivery, outcome, started)
            for delivery, outcome in zip(deliveries, outcomes, strict=True)
        ]

    def _work_group(
        self,
        connection: pika.BlockingConnection,
        publisher: ConfirmingPublisher,
        grouper: Grouper,
        group: list[Held],
    ) -> None:
        """On a worker: the group's deliveries processed, in one transaction when they can
        be, then settled on the I/O thread."""
        # Worker threads don't inherit the main thread's context, so bind `service` here too.
        structlog.contextvars.bind_contextvars(service=self.config.service)
        deliveries = [held.delivery for held in group]
        started = time.monotonic()
        try:
            outcomes = [
                self._given_up(delivery, outcome, started)
                for delivery, outcome in zip(
                    deliveries, self.processor.process_group(deliveries), strict=True
                )
            ]
            self.faults.reach("before_ack")
        except Exception as err:
            log.exception("message.worker_failed", deliveries=len(deliveries))
            outcomes = [Outcome(Verdict.RETRY, f"{type(err).__name__}: {err}")] * len(group)
        finally:
            structlog.contextvars.unbind_contextvars("message_id", "correlation_id", "routing_key")
        try:
            connection.add_callback_threadsafe(
                partial(self._settle_group, publisher, grouper, group, outcomes)
            )
        except ConnectionWrongStateError:
            # The connection died meanwhile; the broker redelivers and the inbox dedupes.
            log.warning("message.settle_skipped", deliveries=len(group))

    def _given_up(self, delivery: Delivery, outcome: Outcome, started: float) -> Outcome:
        """Counted, and after the last failed attempt answered and dead-lettered."""
        labels = (self.config.service, delivery.routing_key)
        if outcome.verdict is Verdict.ACK:
            metrics.consumed.labels(*labels).inc()
            metrics.handler_seconds.labels(*labels).observe(time.monotonic() - started)
        elif outcome.verdict is Verdict.RETRY:
            metrics.failed.labels(*labels).inc()
            if delivery.attempt >= self.config.max_attempts:
                self.processor.give_up(delivery, outcome.error)
                return Outcome(Verdict.DEAD_LETTER, outcome.error)
        return outcome

    def _settle_group(
        self,
        publisher: ConfirmingPublisher,
        grouper: Grouper,
        group: list[Held],
        outcomes: list[Outcome],
    ) -> None:
        for held, outcome in zip(group, outcomes, strict=True):
            self._settle(publisher, held, outcome)
        grouper.done()

    def _settle(self, publisher: ConfirmingPublisher, held: Held, outcome: Outcome) -> None:
        self._inflight -= 1
        if not held.channel.is_open:
            return
        if outcome.verdict is Verdict.ACK:
            held.channel.basic_ack(held.tag)
        else:
            self.settler.settle_failure(held, publisher, outcome)


def _received(
    method: Basic.Deliver, props: pika.BasicProperties, body: bytes, republishers: set[str]
) -> Delivery:
    return received(
        method.routing_key,
        body,
        message_id=props.message_id,
        correlation_id=props.correlation_id,
        reply_to=props.reply_to,
        content_type=props.content_type,
        user_id=props.user_id,
        headers=props.headers,
        republishers=republishers,
    )
