"""Named pause points for crash tests: `DIRECTDL_FAULT_PAUSE=before_ack:30` pauses there."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

POINTS = ("before_commit", "before_ack")


@dataclass(frozen=True)
class Faults:
    """Off unless set. A test kills the process while it is paused at a point it names."""

    point: str = ""
    seconds: float = 0.0

    @classmethod
    def from_env(cls) -> Faults:
        spec = os.environ.get("DIRECTDL_FAULT_PAUSE", "")
        if not spec:
            return cls()
        point, _, seconds = spec.partition(":")
        if point not in POINTS:
            raise ValueError(f"DIRECTDL_FAULT_PAUSE names unknown point {point!r}; use {POINTS}")
        return cls(point, float(seconds or 60))

    def reach(self, point: str) -> None:
        if point == self.point:
            log.warning("fault.paused", point=point, seconds=self.seconds)
            time.sleep(self.seconds)
