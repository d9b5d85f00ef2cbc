"""Run a service in a background thread for integration tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from directdl.runtime.service import Service, U


@contextmanager
def running(service: Service[U], timeout: float = 15.0) -> Iterator[Service[U]]:
    """Migrate, start `service.run()` in a thread, wait until it consumes, stop it on exit."""
    service.migrate()
    thread = threading.Thread(target=service.run, name=service.definition.name, daemon=True)
    thread.start()
    if not service.consumer.connected.wait(timeout):
        service.stop()
        raise AssertionError(f"{service.definition.name} did not connect within {timeout:g} s")
    try:
        yield service
    finally:
        service.stop()
        thread.join(timeout=60)
