"""fetch_with_retries with a scripted fetcher: attempts, back-off bounds, what is not retried."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from directdl.backoff import Backoff
from directdl.contracts.download import DownloadFailure
from directdl_testing.sinks import MemorySink
from host_agent.download.core import (
    DownloadError,
    DownloadRequest,
    Sink,
    TerminalError,
    TransientError,
)
from host_agent.download.retry import fetch_with_retries

pytestmark = pytest.mark.unit

REQUEST = DownloadRequest(url="http://example.invalid/t.qcow2")


class ScriptedFetcher:
    """Raises the scripted errors in turn, then writes one byte and returns."""

    def __init__(self, *errors: DownloadError) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.offsets: list[int] = []

    def fetch(self, request: DownloadRequest, sink: Sink, cancelled: Callable[[], bool]) -> None:
        self.calls += 1
        self.offsets.append(sink.offset)
        if self.errors:
            sink.write(b"x")  # some progress before each failure
            raise self.errors.pop(0)


def transient(n: int) -> list[DownloadError]:
    return [TransientError(DownloadFailure.CONNECTION, f"reset #{i}") for i in range(n)]


def test_transient_errors_are_retried_until_it_succeeds() -> None:
    fetcher, delays = ScriptedFetcher(*transient(3)), list[float]()
    retries: list[tuple[int, str, float]] = []
    sink = MemorySink()
    fetch_with_retries(
        fetcher,
        REQUEST,
        sink,
        sleep=delays.append,
        on_retry=lambda attempt, err, delay: retries.append((attempt, err.message, delay)),
    )
    assert fetcher.calls == 4 and len(delays) == 3
    assert [(a, m) for a, m, _ in retries] == [(1, "reset #0"), (2, "reset #1"), (3, "reset #2")]
    assert [d for *_, d in retries] == delays
    assert fetcher.offsets == [0, 1, 2, 3]  # the sink is never restarted between attempts
    assert sink.restarts == 0


def test_gives_up_after_max_attempts_naming_the_count() -> None:
    errors = transient(10)
    fetcher = ScriptedFetcher(*errors)
    with pytest.raises(TransientError) as caught:
        fetch_with_retries(fetcher, REQUEST, MemorySink(), max_attempts=4, sleep=lambda _: None)
    assert fetcher.calls == 4
    assert caught.value.code == DownloadFailure.CONNECTION
    assert caught.value.message == "reset #3 (gave up after 4 attempts)"
    assert caught.value.__cause__ is errors[3]


def test_delays_are_full_jitter_within_growing_bounds() -> None:
    delays: list[float] = []
    fetch_with_retries(
        ScriptedFetcher(*transient(7)),
        REQUEST,
        MemorySink(),
        max_attempts=8,
        backoff=Backoff(base=0.5, cap=10.0),
        sleep=delays.append,
    )
    bounds = [min(10.0, 0.5 * 2**n) for n in range(7)]
    assert all(0 <= d <= bound for d, bound in zip(delays, bounds, strict=True))


def test_delay_ceilings_double_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("directdl.backoff.random.uniform", lambda low, high: high)
    delays: list[float] = []
    fetch_with_retries(
        ScriptedFetcher(*transient(5)),
        REQUEST,
        MemorySink(),
        max_attempts=6,
        backoff=Backoff(base=0.5, cap=3.0),
        sleep=delays.append,
    )
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_terminal_errors_are_not_retried() -> None:
    error = TerminalError(DownloadFailure.NOT_FOUND, "HTTP 404 for http://example.invalid/t.qcow2")
    fetcher, delays = ScriptedFetcher(error), list[float]()
    with pytest.raises(TerminalError) as caught:
        fetch_with_retries(fetcher, REQUEST, MemorySink(), sleep=delays.append)
    assert caught.value is error
    assert fetcher.calls == 1 and delays == []


def test_a_terminal_error_after_transient_ones_stops_at_once() -> None:
    fetcher = ScriptedFetcher(*transient(2), TerminalError(DownloadFailure.TLS, "untrusted"))
    with pytest.raises(TerminalError):
        fetch_with_retries(fetcher, REQUEST, MemorySink(), sleep=lambda _: None)
    assert fetcher.calls == 3


def test_cancel_during_back_off_is_cancelled() -> None:
    fetcher, cancel = ScriptedFetcher(*transient(3)), [False]

    def sleep(_: float) -> None:
        cancel[0] = True

    with pytest.raises(TerminalError) as caught:
        fetch_with_retries(fetcher, REQUEST, MemorySink(), sleep=sleep, cancelled=lambda: cancel[0])
    assert caught.value.code == DownloadFailure.CANCELLED and fetcher.calls == 1


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        fetch_with_retries(ScriptedFetcher(), REQUEST, MemorySink(), max_attempts=0)
