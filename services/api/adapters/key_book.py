"""The keys as requests are checked against them: read per request, so a revocation applies
to the very next one, on every replica."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from api.domain.keys import ApiKey
from api.uow import ApiUnitOfWork

# Recording every request's use would be one write per request; once a minute tells enough.
USE_RECORDED_EVERY_S = 60.0


class KeyBook:
    def __init__(
        self, unit_of_work: Callable[[], ApiUnitOfWork], clock: Callable[[], datetime]
    ) -> None:
        self.unit_of_work = unit_of_work
        self.clock = clock
        self._recorded: dict[str, float] = {}
        self._lock = threading.Lock()

    def usable(self, api_key: str) -> ApiKey | None:
        """The key with its secret, unless it is unknown or revoked."""
        with self.unit_of_work() as uow:
            key = uow.keys.get(api_key)
        return key if key is not None and key.usable else None

    def used(self, api_key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._recorded.get(api_key, -USE_RECORDED_EVERY_S) < USE_RECORDED_EVERY_S:
                return
            self._recorded[api_key] = now
        with self.unit_of_work() as uow:
            uow.keys.used(api_key, self.clock())
            uow.commit()
