"""The retry loop around a Fetcher: the shared back-off between attempts, resuming each time."""

from __future__ import annotations

import time
from collections.abc import Callable

from directdl.backoff import Backoff
from directdl.contracts.download import DownloadFailure
from host_agent.download.core import (
    DownloadRequest,
    Fetcher,
    Sink,
    TerminalError,
    TransientError,
)

# Half a second after the first failure, doubling up to 30 s.
DEFAULT_BACKOFF = Backoff(base=0.5, cap=30.0)
# Called before each back-off with the attempt that failed (1-based), its error and the delay.
OnRetry = Callable[[int, TransientError, float], None]


def fetch_with_retries(
    fetcher: Fetcher,
    request: DownloadRequest,
    sink: Sink,
    *,
    max_attempts: int = 5,
    backoff: Backoff = DEFAULT_BACKOFF,
    cancelled: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: OnRetry | None = None,
) -> None:
    """Call `fetcher.fetch` until it returns, at most `max_attempts` times in all.

    A TransientError waits `backoff.delay(n)` after the n-th failure and tries again; the sink
    is left as it is, so the fetcher resumes from `sink.offset`. The last TransientError is
    raised again with the attempt count in its message. A TerminalError propagates at once.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    for attempt in range(1, max_attempts + 1):
        try:
            fetcher.fetch(request, sink, cancelled)
        except TransientError as err:
            if attempt == max_attempts:
                raise TransientError(
                    err.code, f"{err.message} (gave up after {attempt} attempts)"
                ) from err
            delay = backoff.delay(attempt)
            if on_retry is not None:
                on_retry(attempt, err, delay)
            if not cancelled():
                sleep(delay)
            if cancelled():
                raise TerminalError(
                    DownloadFailure.CANCELLED,
                    f"download cancelled after attempt {attempt} failed: {err.message}",
                ) from err
        else:
            return
