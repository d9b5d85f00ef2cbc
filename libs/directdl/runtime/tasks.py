"""Background tasks a service runs beside its consumer: timers, mostly."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from directdl.runtime.service import Service

log = structlog.get_logger(__name__)


class Periodic:
    """Calls `action(service)` every `interval()` seconds on its own thread until stopped.

    The interval is read before each wait, so a changed setting applies from the next run.
    """

    def __init__(
        self,
        name: str,
        interval: Callable[[], float],
        action: Callable[[Service[Any]], None],
        run_at_start: bool = True,
    ) -> None:
        self.name = name
        self.interval = interval
        self.action = action
        self.run_at_start = run_at_start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, service: Service[Any]) -> None:
        self._thread = threading.Thread(
            target=self._loop, args=(service,), name=self.name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self, service: Service[Any]) -> None:
        structlog.contextvars.bind_contextvars(service=service.definition.name, task=self.name)
        if self.run_at_start:
            self._run_once(service)
        while not self._stop.wait(max(0.05, self.interval())):
            self._run_once(service)

    def _run_once(self, service: Service[Any]) -> None:
        try:
            self.action(service)
        except Exception:
            log.exception("task.failed")


class AtStart:
    """Runs `action(service)` once as the service starts, before it consumes."""

    def __init__(self, action: Callable[[Service[Any]], None]) -> None:
        self.action = action

    def start(self, service: Service[Any]) -> None:
        self.action(service)

    def stop(self) -> None:
        """Nothing keeps running."""
