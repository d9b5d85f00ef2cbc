"""The one back-off policy: exponential growth, capped, with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """How long to wait after the n-th failure (n from 1): `uniform(0, min(cap, base * 2**(n-1)))`.

    Full jitter, as in AWS's "Exponential Backoff and Jitter": clients that failed together
    spread out instead of retrying in step. Nothing here sleeps; each caller waits its own way
    (an Event, a delayed redelivery), so that no thread holding work waits for nothing.
    """

    base: float = 0.5
    cap: float = 30.0

    def ceiling(self, attempt: int) -> float:
        """The longest wait after that failure; the growth stops at `cap`."""
        if attempt < 1:
            raise ValueError(f"attempt counts from 1, got {attempt}")
        return min(self.cap, self.base * 2.0 ** min(attempt - 1, 62))

    def delay(self, attempt: int) -> float:
        return float(random.uniform(0, self.ceiling(attempt)))
