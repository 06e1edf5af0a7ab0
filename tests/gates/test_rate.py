"""The shared rate limiter: smooth pacing, a window no second of calls exceeds, slow-down on
rate errors, recovery, shutdown, the rate schedule."""

from __future__ import annotations

import random
import threading

import pytest

from syncd.gates.rate import DepartureWindow, RateLimiter
from syncd.rate_schedule import parse_schedule


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_calls_are_spaced_evenly_without_a_burst_after_idle() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock)
    slots = [limiter.reserve() for _ in range(5)]
    assert slots == pytest.approx([1000.0, 1000.1, 1000.2, 1000.3, 1000.4])
    clock.now = 2000.0  # long idle: no saved-up credit, the next slots are still 0.1 s apart
    after_idle = [limiter.reserve() for _ in range(3)]
    assert after_idle == pytest.approx([2000.0, 2000.1, 2000.2])


def test_concurrent_workers_never_share_or_squeeze_a_slot() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50.0, clock=clock)
    slots: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(200):
            slot = limiter.reserve()
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots.sort()
    gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
    assert len(slots) == 1600
    assert min(gaps) == pytest.approx(0.02)


def test_rate_error_halves_the_rate_once_per_overload() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock)
    limiter.on_rate_error()
    limiter.on_rate_error()  # answers of calls already in flight: same overload
    assert limiter.rate == pytest.approx(5.0)
    clock.now += 2.0
    limiter.on_rate_error()
    assert limiter.rate == pytest.approx(2.5)


def test_rate_never_falls_below_the_floor() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, floor=0.5, clock=clock)
    for _ in range(20):
        clock.now += 5.0
        limiter.on_rate_error()
    assert limiter.rate == pytest.approx(0.5)


def test_rate_error_leaves_a_full_interval_before_the_next_call() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock)
    limiter.reserve()
    limiter.on_rate_error()
    assert limiter.reserve() == pytest.approx(1000.2)  # 1 / 5 calls per second


def test_successes_bring_the_rate_back_gradually_to_the_ceiling() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, recovery_calls=50, clock=clock)
    limiter.on_rate_error()
    limiter.on_success()
    assert 5.0 < limiter.rate < 10.0
    for _ in range(100):
        limiter.on_success()
    assert limiter.rate == pytest.approx(10.0)


def test_close_wakes_a_worker_waiting_for_its_slot() -> None:
    limiter = RateLimiter(0.001)  # the second slot is 1000 s away
    assert limiter.acquire()
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(limiter.acquire()))
    waiter.start()
    limiter.close()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert results == [False]
    assert limiter.acquire() is False


def test_acquire_returns_when_the_slot_is_due() -> None:
    limiter = RateLimiter(1000.0)
    assert all(limiter.acquire() for _ in range(20))


def test_non_positive_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="qps must be positive"):
        RateLimiter(0)


def test_calls_whose_slots_came_late_wait_for_the_window_instead_of_bunching_up() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock)
    for n in range(10):  # ten calls on time, answered at once
        clock.now = 1000.0 + n * 0.1
        assert limiter.acquire()
        limiter.on_success()
    # a worker was stuck: the next slots all passed; the eleventh call may not leave before
    # the first one (at 1000.0) left the server's one-second window
    clock.now = 1000.95
    left: list[bool] = []
    waiter = threading.Thread(target=lambda: left.append(limiter.acquire()))
    waiter.start()
    waiter.join(timeout=0.3)
    assert left == [], "the eleventh call left within one second of the first"
    clock.now = 1001.01
    waiter.join(timeout=10)
    assert left == [True]


def test_in_any_second_the_server_counts_no_more_calls_than_the_rate() -> None:
    rng = random.Random(7)
    window = DepartureWindow(10.0)
    now = 1000.0
    calls: list[tuple[float, float]] = []  # (left, answered)
    for n in range(300):
        slot = 1000.0 + n * 0.1 + rng.choice((0.0, 0.0, 0.08, 0.2))  # some slots come late
        now = max(now, slot)
        now = max(now, window.earliest(now))
        place = window.depart(now)
        answered = now + rng.uniform(0.001, 0.04)
        DepartureWindow.answered(place, answered)
        calls.append((now, answered))
    # the server counts a call somewhere between its departure and its answer: the worst
    # case packs early calls late and late calls early
    for arrival in (
        [left for left, _ in calls],
        [answered for _, answered in calls],
        [answered if n % 2 == 0 else left for n, (left, answered) in enumerate(calls)],
        [rng.uniform(left, answered) for left, answered in calls],
    ):
        arrival.sort()
        assert all(arrival[i + 10] - arrival[i] > 1.0 for i in range(len(arrival) - 10))


def test_an_unanswered_call_holds_its_place_for_the_guard_time_only() -> None:
    window = DepartureWindow(2.0, guard=0.05)
    window.depart(0.0)  # never answered (a timeout, a transient error)
    window.depart(0.0)
    assert window.earliest(0.5) == pytest.approx(0.05 + window.window)


def test_the_scheduled_rate_is_taken_at_the_boundary() -> None:
    # 00:00 UTC is 08:00 in the account's time zone
    midnight_utc = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    wall = FakeClock()
    wall.now = midnight_utc - 1.0  # 07:59:59 UTC+8
    schedule = parse_schedule("08:00,3 19:00,10", 10.0)
    limiter = RateLimiter(10.0, clock=FakeClock(), schedule=schedule, wall=wall)
    assert limiter.ceiling == 10.0 and limiter.rate == 10.0
    wall.now = midnight_utc
    assert limiter.ceiling == 3.0
    assert limiter.rate == 3.0
    wall.now = midnight_utc + 11 * 3600 - 1  # 18:59:59
    assert limiter.ceiling == 3.0
    wall.now = midnight_utc + 11 * 3600
    limiter.reserve()
    assert limiter.rate == 10.0  # a full rate follows the schedule up at once
