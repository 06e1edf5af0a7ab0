"""The shared rate limiter: smooth pacing, slow-down on rate errors, recovery, shutdown."""

from __future__ import annotations

import threading

import pytest

from syncd.sync.rate import RateLimiter


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
