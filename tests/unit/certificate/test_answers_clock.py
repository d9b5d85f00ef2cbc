"""The answers' clock: the wall clock less the answers' lag, and none at all for a moment
after the service starts or the process stood still."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certificate.adapters.answers_clock import AnswersClock

pytestmark = pytest.mark.unit

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


class Steady:
    """time.monotonic, as a test moves it."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


def test_it_judges_only_once_the_consumer_had_time_to_read_after_a_start_or_a_stall() -> None:
    steady = Steady()
    clock = AnswersClock(lambda: NOW, settle=3, monotonic=steady)

    judged = []
    for _ in range(5):  # the timer, every second, from the start
        judged.append(clock.judge_at())
        steady.seconds += 1
    assert judged == [None, None, None, NOW, NOW]

    steady.seconds += 60  # SIGSTOP, then SIGCONT: the answers of that minute are unread
    judged = [clock.judge_at()]
    for _ in range(3):
        steady.seconds += 1
        judged.append(clock.judge_at())
    assert judged == [None, None, None, NOW], "the timer ticking again, the consumer reads"


def test_it_judges_at_the_answers_read_and_skips_a_batch_without_answered_at() -> None:
    steady = Steady()
    clock = AnswersClock(lambda: NOW, settle=0, monotonic=steady)
    clock.observe([NOW - timedelta(seconds=40), NOW - timedelta(seconds=38)])
    assert clock.judge_at() == NOW - timedelta(seconds=38)
    clock.observe([])
    assert clock.now() == NOW - timedelta(seconds=38), "no answered_at: the lag stays"
