"""The service's heartbeat clock: held still after this process was frozen, until the beats
that waited meanwhile are handled."""

from __future__ import annotations

from datetime import timedelta

import pytest

from directdl_testing.clocks import Wall
from registration.clock import HELD_AT_MOST_S, PULSE_S, ServiceClock

pytestmark = pytest.mark.unit


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def running(seconds: float, clock: ServiceClock, wall: Wall, monotonic: Monotonic) -> None:
    """Time passes with the service's pulse task running."""
    for _ in range(round(seconds / PULSE_S)):
        wall.advance(PULSE_S)
        monotonic.now += PULSE_S
        clock.pulse()


def frozen(seconds: float, wall: Wall, monotonic: Monotonic) -> None:
    wall.advance(seconds)
    monotonic.now += seconds


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
def clock(wall: Wall, monotonic: Monotonic) -> ServiceClock:
    return ServiceClock(wall, monotonic)


def test_while_the_pulse_comes_on_time_it_is_the_wall_clock_less_the_lag(
    clock: ServiceClock, wall: Wall, monotonic: Monotonic
) -> None:
    running(2, clock, wall, monotonic)
    clock.observe([wall() - timedelta(seconds=3)])
    assert abs(clock.now() - (wall() - timedelta(seconds=3))) < timedelta(seconds=0.1)
    assert not clock.held


def test_woken_from_a_freeze_it_holds_still_until_a_batch_says_how_far_behind_it_is(
    clock: ServiceClock, wall: Wall, monotonic: Monotonic
) -> None:
    running(1, clock, wall, monotonic)
    before = clock.now()
    frozen(60, wall, monotonic)
    # Read before the pulse task has even run again: overdue is as good as late.
    assert clock.held and clock.now() - before < timedelta(seconds=0.2)
    running(1, clock, wall, monotonic)
    assert clock.now() - before < timedelta(seconds=0.2), "no batch handled yet"
    clock.observe([wall() - timedelta(seconds=60)])  # the first of the backlog
    assert not clock.held
    assert abs(clock.now() - (wall() - timedelta(seconds=60))) < timedelta(seconds=0.1)


def test_with_no_beat_at_all_after_a_freeze_it_lets_go_in_the_end(
    clock: ServiceClock, wall: Wall, monotonic: Monotonic
) -> None:
    running(1, clock, wall, monotonic)
    frozen(60, wall, monotonic)
    assert clock.held
    running(HELD_AT_MOST_S + 1, clock, wall, monotonic)
    assert not clock.held, "every host may really be silent"
    assert abs(clock.now() - wall()) < timedelta(seconds=0.1)


def test_without_a_pulse_task_it_never_holds(clock: ServiceClock, wall: Wall) -> None:
    frozen(60, wall, Monotonic())
    assert not clock.held and abs(clock.now() - wall()) < timedelta(seconds=0.1)
