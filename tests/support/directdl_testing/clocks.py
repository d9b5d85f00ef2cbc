"""A wall clock a test can move on, for a service's HeartbeatClock to read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Wall:
    """The real clock until a test moves it on (`advance`), to make hosts fall silent."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)
