"""When a host counts as Up: it said so, and it has been heard from lately."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from directdl.contracts.host import HostState

# A host silent for this many heartbeat intervals counts as down.
MISSED_HEARTBEATS = 3


def is_up(state: str, last_seen: datetime, interval_seconds: float, now: datetime) -> bool:
    silence = timedelta(seconds=interval_seconds * MISSED_HEARTBEATS)
    return state == HostState.UP and now - last_seen <= silence


def wall_clock() -> datetime:
    return datetime.now(UTC)


class HeartbeatClock:
    """The time liveness is judged at: the wall clock, less how far behind this consumer is
    in the heartbeats. A consumer handling heartbeats sent a minute ago cannot tell which
    hosts fell silent since; judged at that minute ago, a backlog makes no host look Down.

    The lag is measured on each batch: when it was handled, less the median `sent_at` in it,
    so that a few hosts whose clocks are wrong cannot move it far; it is never negative. When
    every host falls silent the lag keeps its last value, which is small once the consumer
    had caught up."""

    def __init__(self, clock: Callable[[], datetime] = wall_clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._lag = timedelta(0)

    def observe(self, sent_at: Sequence[datetime]) -> None:
        """A batch of heartbeats, sent at these times, was just handled."""
        if not sent_at:
            return
        median = sorted(sent_at)[len(sent_at) // 2]
        lag = max(self._clock() - median, timedelta(0))
        with self._lock:
            self._lag = lag

    @property
    def lag(self) -> timedelta:
        with self._lock:
            return self._lag

    def now(self) -> datetime:
        """The wall clock, less the lag: the moment up to which every heartbeat is in."""
        return self._clock() - self.lag
