"""The heartbeat clock, held still while this process may have been frozen."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from directdl.liveness import HeartbeatClock, wall_clock

# How often the service's "clock" task calls `pulse`.
PULSE_S = 0.1
# A pulse this late means the process was frozen (SIGSTOP, a paused VM) or starved of CPU.
FROZEN_AFTER_S = 1.0
# With no batch of beats handled this long after a freeze, its lag is believed again: every
# host may really have fallen silent meanwhile.
HELD_AT_MOST_S = 15.0


class ServiceClock(HeartbeatClock):
    """A HeartbeatClock that knows when its lag cannot be believed. Woken from a freeze, a
    process's lag is the one from before it, while the beats sent meanwhile wait in the
    queue: judged at the wall clock less that lag, every host would look silent, in host.list
    as in the watchdog, until the first batch is handled. So once a pulse comes late, or is
    overdue, `now()` stays at its value from the last pulse before, until a batch of beats
    has been handled (or HELD_AT_MOST_S have passed). Until the first pulse it is a plain
    HeartbeatClock, as in unit tests that run no tasks."""

    def __init__(
        self,
        clock: Callable[[], datetime] = wall_clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock)
        self._monotonic = monotonic
        self._pulse_lock = threading.Lock()
        self._pulsed: float | None = None
        self._before: datetime | None = None  # `now()` at the last pulse
        self._held: tuple[datetime, float] | None = None  # the value held, and since when

    def pulse(self) -> None:
        """Called every PULSE_S by the service's clock task."""
        with self._pulse_lock:
            moment = self._monotonic()
            held = self._holding(moment)
            self._pulsed = moment
            if held is None:
                self._before = super().now()

    def observe(self, sent_at: Sequence[datetime]) -> None:
        super().observe(sent_at)
        if sent_at:
            with self._pulse_lock:
                self._held = None  # the lag is measured afresh, on the beats that waited

    def now(self) -> datetime:
        with self._pulse_lock:
            held = self._holding(self._monotonic())
        return held if held is not None else super().now()

    @property
    def held(self) -> bool:
        """Whether `now()` is held still, after a freeze."""
        with self._pulse_lock:
            return self._holding(self._monotonic()) is not None

    def _holding(self, moment: float) -> datetime | None:
        """The value held at `moment`, if any: from the pulse before a late or overdue one."""
        late = self._pulsed is not None and moment - self._pulsed > FROZEN_AFTER_S
        if late and self._held is None and self._before is not None:
            self._held = (self._before, moment)
        if self._held is not None and moment - self._held[1] >= HELD_AT_MOST_S:
            self._held = None
        return self._held[0] if self._held is not None else None
