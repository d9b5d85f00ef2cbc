"""The outbox relay's own thread and broker connection, publishing with pipelined confirms.

It runs apart from the consumer, so that publishing never holds up a delivery or an ack.
As in pika's `asynchronous_publisher_example.py`, a SelectConnection's I/O loop owns the
connection; other threads only wake it, with `add_callback_threadsafe`. A flush claims a
batch of outbox rows, publishes them all, and marks them sent in one statement once every
confirm is in. When the broker goes away the loop reconnects with growing back-off and
flushes again: rows committed meanwhile, or in flight, are still pending.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import pika
import structlog
from pika.adapters.select_connection import IOLoop, SelectConnection
from pika.channel import Channel
from pika.frame import Method
from pika.spec import Basic

from directdl.backoff import Backoff
from directdl.bus.connection import broker_urls, connection_parameters, describe_error, redact
from directdl.bus.relay import BATCH, Claim, OutboxRelay

log = structlog.get_logger(__name__)

# Every wake-up comes from a commit that enqueued something. This poll is for rows no
# wake-up announces: those a replica sharing the database committed and then died before
# publishing, and any left by a wake-up lost in a reconnect. One indexed query every few
# seconds costs nothing next to one after every commit, which the relay used to make.
SAFETY_POLL_SECONDS = 5.0
# After a nack: the broker had an internal error; try those rows again a little later.
REFUSED_RETRY_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 3600.0
RECONNECT_BACKOFF = Backoff(base=1.0, cap=30.0)


class RelayThread:
    """Publishes the outbox from its own thread and connection, as the same broker user."""

    def __init__(
        self,
        relay: OutboxRelay,
        url: str,
        name: str,
        backoff: Backoff = RECONNECT_BACKOFF,
        batch: int = BATCH,
    ) -> None:
        self.relay = relay
        self.url = url
        self.name = name
        self.backoff = backoff
        self.batch = batch
        self.connected = threading.Event()
        self.sent = 0  # rows marked sent, over the thread's life
        self._ioloop = IOLoop()
        self._loop_lock = threading.Lock()
        self._loop_closed = False
        self._thread: threading.Thread | None = None
        self._connection: SelectConnection | None = None
        self._channel: Channel | None = None
        self._claim: Claim | None = None
        self._by_tag: dict[int, int] = {}  # delivery tag -> outbox id, of the claim in flight
        self._by_message_id: dict[str, int] = {}
        self._tag = 0
        self._again = False  # woken while a claim was in flight
        self._woken = threading.Event()  # a wake-up is queued and not yet run
        self._idle = threading.Event()  # the last flush found nothing left to send
        self._stopping = False
        self._attempt = 0
        self._brokers = broker_urls(url)
        self._broker = 0  # which of them the next connection tries

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-relay", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Something was committed to the outbox; publish it soon. Any thread may call it;
        once the relay has stopped, what was committed waits for the next start."""
        if not self._woken.is_set():
            self._woken.set()
            self._call_soon(self._on_wake)

    def finish(self, timeout: float) -> bool:
        """Publish everything pending, waiting at most `timeout` seconds; whether it did.
        Disconnected, it does not wait: the rows are safe in the outbox until the next start."""
        if not self.connected.is_set():
            return False
        self._idle.clear()
        self._call_soon(self._flush)
        return self._idle.wait(timeout)

    def _call_soon(self, callback: Callable[[], None]) -> None:
        with self._loop_lock:
            if not self._loop_closed:
                self._ioloop.add_callback_threadsafe(callback)

    def stop(self, timeout: float = 10.0) -> None:
        """Close the connection and end the thread; what is unsent waits for the next start."""
        if self._thread is None:
            return
        self._call_soon(self._shut_down)
        self._thread.join(timeout)

    # Everything below runs on the relay's thread.

    def _run(self) -> None:
        structlog.contextvars.bind_contextvars(service=self.name)
        self._connect()
        self._ioloop.call_later(PRUNE_EVERY_SECONDS, self._prune)
        self._ioloop.call_later(SAFETY_POLL_SECONDS, self._poll)
        try:
            self._ioloop.start()
        finally:
            with self._loop_lock:
                self._loop_closed = True
                self._ioloop.close()

    def _connect(self) -> None:
        if self._stopping:
            return
        # One broker per attempt; after a loss the next attempt tries the next node.
        broker = self._brokers[self._broker % len(self._brokers)]
        self._connection = SelectConnection(
            connection_parameters(broker, f"{self.name}-relay"),
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_lost,
            on_close_callback=self._on_connection_lost,
            custom_ioloop=self._ioloop,
        )

    def _on_connection_open(self, connection: SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: Channel) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=partial(self._on_confirming, channel))

    def _on_confirming(self, channel: Channel, _frame: Method[Basic.Ack]) -> None:
        self._channel = channel
        self._tag = 0
        self._attempt = 0
        self.connected.set()
        log.debug("outbox.relay_connected", broker=redact(self.url))
        self._flush()  # what was committed before a crash or while disconnected

    def _on_channel_closed(self, channel: Channel, reason: BaseException) -> None:
        # The broker closes a channel on a publish it cannot take at all (an exchange that
        # does not exist, a user_id that is not ours): start again on a new connection.
        self._channel = None
        if self._connection is not None and self._connection.is_open:
            log.warning("outbox.channel_closed", error=describe_error(reason))
            self._connection.close()

    def _on_connection_lost(self, _connection: SelectConnection, err: BaseException) -> None:
        self.connected.clear()
        self._channel = None
        self._connection = None
        if self._claim is not None:
            OutboxRelay.abandon(self._claim)
            self._claim = None
        if self._stopping:
            self._ioloop.stop()
            return
        self._attempt += 1
        self._broker += 1
        delay = self.backoff.delay(self._attempt)
        log.warning(
            "outbox.relay_disconnected",
            broker=redact(self.url),
            error=describe_error(err),
            retry_in_s=round(delay, 2),
        )
        self._ioloop.call_later(delay, self._connect)

    def _on_wake(self) -> None:
        self._woken.clear()
        self._flush()

    def _flush(self) -> None:
        try:
            self._publish_batch()
        except Exception:
            # The database, most likely: the rows stay pending, and are tried again later.
            log.exception("outbox.flush_failed")
            if self._claim is not None:
                OutboxRelay.abandon(self._claim)
                self._claim = None
            self._ioloop.call_later(REFUSED_RETRY_SECONDS, self._flush)

    def _publish_batch(self) -> None:
        channel = self._channel
        if channel is None or not channel.is_open:
            return  # the next connection flushes
        if self._claim is not None:
            self._again = True
            return
        self._again = False
        claim = self.relay.claim(self.batch)
        if claim is None:
            self._idle.set()
            return
        self._claim = claim
        self._by_tag, self._by_message_id = {}, {}
        for row in claim.rows:
            assert row.id is not None
            props, mandatory = self.relay.publication(row)
            channel.basic_publish(
                row.exchange, row.routing_key, row.body, props, mandatory=mandatory
            )
            self._tag += 1
            self._by_tag[self._tag] = row.id
            self._by_message_id[row.message_id] = row.id

    def _on_return(
        self,
        _channel: Channel,
        method: Basic.Return,
        props: pika.BasicProperties,
        _body: bytes,
    ) -> None:
        # Events nobody listens to: the broker took them and routed them nowhere. Say so,
        # and don't resend forever. RabbitMQ sends the return before the confirm.
        outbox_id = self._by_message_id.get(props.message_id or "")
        if self._claim is None or outbox_id is None:
            return
        where = f"exchange {method.exchange!r}" if method.exchange else "the default exchange"
        error = f"nothing is bound to {method.routing_key!r} on {where}"
        log.debug("outbox.unrouted", routing_key=method.routing_key, error=error)
        self._claim.unrouted[outbox_id] = error

    def _on_confirm(self, frame: Method[Basic.Ack | Basic.Nack]) -> None:
        claim = self._claim
        if claim is None:
            return
        method = frame.method
        tag: int = method.delivery_tag
        tags = [t for t in self._by_tag if t <= tag] if method.multiple else [tag]
        refused = isinstance(method, Basic.Nack)
        for each in tags:
            outbox_id = self._by_tag.pop(each, None)
            if outbox_id is None:
                continue
            if refused:
                error = "the broker refused the message (nack)"
                log.warning("outbox.refused", outbox_id=outbox_id, error=error)
                claim.refused[outbox_id] = error
            else:
                claim.confirmed.add(outbox_id)
        if not self._by_tag:
            self._settle(claim)

    def _settle(self, claim: Claim) -> None:
        self._claim = None
        try:
            self.sent += self.relay.settle(claim)
        except Exception:
            # Not marked: these rows go out again, with the same message_ids (at least once).
            log.exception("outbox.settle_failed", rows=len(claim.rows))
            self._ioloop.call_later(REFUSED_RETRY_SECONDS, self._flush)
            return
        if claim.refused:
            # This flush stops here; the refused rows are tried again a little later.
            self._idle.set()
            self._ioloop.call_later(REFUSED_RETRY_SECONDS, self._flush)
        elif self._again or len(claim.rows) == self.batch:
            self._flush()
        else:
            self._idle.set()

    def _poll(self) -> None:
        self._flush()
        self._ioloop.call_later(SAFETY_POLL_SECONDS, self._poll)

    def _prune(self) -> None:
        try:
            self.relay.prune()
        except Exception:
            log.exception("outbox.prune_failed")
        self._ioloop.call_later(PRUNE_EVERY_SECONDS, self._prune)

    def _shut_down(self) -> None:
        self._stopping = True
        connection = self._connection
        if connection is not None and not (connection.is_closing or connection.is_closed):
            connection.close()
        elif connection is None:
            self._ioloop.stop()  # between connections: nothing to close
