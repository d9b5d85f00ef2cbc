"""The clock the hosts' answers are judged late by: the answers' own HeartbeatClock, held back
for a moment after the process stood still."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from directdl.liveness import HeartbeatClock, wall_clock


class AnswersClock(HeartbeatClock):
    """`now()` is the wall clock less how far behind the answers consumer is, measured on each
    batch from the hosts' `answered_at`. That lag is only measured once a batch is read: at
    start, or after the process stood still (SIGSTOP, a suspended VM), the answers that came
    in meanwhile wait unread and the lag says nothing of them. So `judge_at()` gives no time
    until `settle` seconds have passed since then, for the consumer to read them first."""

    def __init__(
        self,
        clock: Callable[[], datetime] = wall_clock,
        settle: float = 3.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock)
        self._settle = settle
        self._monotonic = monotonic
        self._guard = threading.Lock()
        self._last_asked: float | None = None
        self._resumed_at = 0.0

    def judge_at(self) -> datetime | None:
        """The time to judge deadlines at, or None while the consumer may still be catching
        up. Called by the one timer that judges; a gap longer than `settle` between two calls
        means the process stood still (the timer calls far more often)."""
        with self._guard:
            now = self._monotonic()
            if self._last_asked is None or now - self._last_asked > self._settle:
                self._resumed_at = now
            self._last_asked = now
            if now - self._resumed_at < self._settle:
                return None
        return self.now()
