"""Deliveries waiting for a worker, handed over in groups that commit together."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor

from directdl.bus.settle import Held

# One commit, so one fsync, for up to this many deliveries; a group is never larger than
# what the broker lets this consumer hold (its prefetch).
GROUP_MAX = 64

StartGroup = Callable[[list[Held]], None]


def _unset(_group: list[Held]) -> None:
    raise RuntimeError("Grouper.start was not set")


class Grouper:
    """A free worker takes a share of what is waiting: all of it when it is the only one
    free, so that under load one transaction holds many deliveries and at rest each runs at
    once, alone. Lives on the I/O thread, which calls `add` and `done`; `start(group)` runs on
    a worker of the executor, and must end by having the I/O thread call `done`."""

    def __init__(self, workers: int, executor: Executor) -> None:
        self.workers = workers
        self.executor = executor
        self.start: StartGroup = _unset
        self.waiting: deque[Held] = deque()
        self.running = 0

    def add(self, held: Held) -> None:
        self.waiting.append(held)
        self._start()

    def done(self) -> None:
        self.running -= 1
        self._start()

    def _start(self) -> None:
        while self.waiting and self.running < self.workers:
            free = self.workers - self.running
            # Shared among the free workers, so that a slow handler (a URL check) holds up
            # no more than its own group.
            size = min(GROUP_MAX, -(-len(self.waiting) // free))
            group = [self.waiting.popleft() for _ in range(size)]
            self.running += 1
            self.executor.submit(self.start, group)
