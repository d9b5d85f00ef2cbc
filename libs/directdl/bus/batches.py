"""A batched queue's deliveries, gathered on the I/O thread and handed to a worker in batches."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from functools import partial

import pika
import structlog
from pika.exceptions import ConnectionWrongStateError

from directdl.bus.delivery import Outcome, Verdict
from directdl.bus.publisher import ConfirmingPublisher
from directdl.bus.settle import Held

log = structlog.get_logger(__name__)

BATCH_SIZE = 500
# Once a batch's first delivery is in, how long to wait for more before handing it over:
# a lone heartbeat is late by at most this.
LINGER_SECONDS = 0.02
# A batch being handled and the next one filling, on the queue's own channel.
BATCH_PREFETCH = 2 * BATCH_SIZE

Work = Callable[[list[Held]], list[Outcome]]
Settle = Callable[[ConfirmingPublisher, Held, Outcome], None]


class BatchedQueue:
    """One batch at a time per queue, so that a batch commits before the next one starts:
    two heartbeats of one host are never applied out of order. All but `_handle` run on
    the I/O thread, which owns the channels; nothing is acked before its batch commits."""

    def __init__(
        self,
        connection: pika.BlockingConnection,
        publisher: ConfirmingPublisher,
        queue: str,
        executor: Executor,
        work: Work,
        settle: Settle,
    ) -> None:
        self.connection = connection
        self.publisher = publisher
        self.queue = queue
        self.executor = executor
        self.work = work
        self.settle = settle
        self.waiting: list[Held] = []
        self.busy = False
        self._timer: int | None = None

    def add(self, held: Held) -> None:
        self.waiting.append(held)
        if self.busy:
            return
        if len(self.waiting) >= BATCH_SIZE:
            self._hand_over()
        elif self._timer is None:
            self._timer = self.connection.call_later(LINGER_SECONDS, self._lingered)

    def _lingered(self) -> None:
        self._timer = None
        if not self.busy and self.waiting:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._timer is not None:
            self.connection.remove_timeout(self._timer)
            self._timer = None
        batch, self.waiting = self.waiting[:BATCH_SIZE], self.waiting[BATCH_SIZE:]
        self.busy = True
        self.executor.submit(self._handle, batch)

    def _handle(self, batch: list[Held]) -> None:
        """On a worker thread."""
        try:
            outcomes = self.work(batch)
        except Exception as err:
            log.exception("batch.worker_failed", queue=self.queue)
            outcomes = [Outcome(Verdict.RETRY, f"{type(err).__name__}: {err}")] * len(batch)
        try:
            self.connection.add_callback_threadsafe(partial(self._settled, batch, outcomes))
        except ConnectionWrongStateError:
            # The connection died meanwhile; the broker redelivers, the handlers are upserts.
            log.warning("batch.settle_skipped", queue=self.queue, deliveries=len(batch))

    def _settled(self, batch: list[Held], outcomes: list[Outcome]) -> None:
        for held, outcome in zip(batch, outcomes, strict=True):
            self.settle(self.publisher, held, outcome)
        self.busy = False
        if self.waiting:
            # They waited at least as long as this batch took: no linger.
            self._hand_over()
