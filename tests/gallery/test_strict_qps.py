"""The local gallery's strict QPS limit: at most N calls in any sliding second, no burst."""

from __future__ import annotations

import pytest

from syncd.gallery.faults import FaultConfig, FaultInjector, SlidingWindowLimit


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_strict_limit_admits_n_calls_in_a_second_and_refuses_the_next() -> None:
    limit = SlidingWindowLimit(10.0)
    assert [limit.admit(500.0 + n / 100) for n in range(10)] == [True] * 10  # no spacing needed
    assert limit.admit(500.5) is False
    assert limit.admit(500.999) is False
    # the oldest admit leaves the window exactly one second later
    assert limit.admit(501.0) is True
    assert limit.admit(501.0) is False


def test_strict_limit_holds_in_every_sliding_window_not_per_calendar_second() -> None:
    limit = SlidingWindowLimit(10.0)
    # five calls late in one second, five early in the next: ten within 0.2 s
    admitted = [t for t in (0.9, 0.92, 0.94, 0.96, 0.98, 1.0, 1.02, 1.04, 1.06, 1.08)
                if limit.admit(500.0 + t)]  # fmt: skip
    assert len(admitted) == 10
    assert limit.admit(501.1) is False  # a calendar-second counter would admit it
    assert limit.admit(501.9) is True  # 500.9 left the window


def test_refused_calls_do_not_count_against_the_window() -> None:
    limit = SlidingWindowLimit(2.0)
    assert limit.admit(0.0) and limit.admit(0.5)
    assert not any(limit.admit(0.5 + n * 0.01) for n in range(40))
    assert limit.admit(1.0) is True  # only the admit at 0.0 had to leave


def test_a_rate_below_one_spaces_single_calls() -> None:
    limit = SlidingWindowLimit(0.5)
    assert limit.admit(0.0) is True
    assert limit.admit(1.9) is False
    assert limit.admit(2.0) is True


@pytest.mark.parametrize("mode", ["strict", "bucket"])
def test_injector_answers_18_beyond_the_limit(mode: str) -> None:
    clock = FakeClock()
    config = FaultConfig(qps_limit=10.0, qps_mode=mode)  # type: ignore[arg-type]
    injector = FaultInjector(lambda: config, clock=clock)
    answers = [injector.admit() for _ in range(30)]
    admitted = answers.count(None)
    assert set(answers) == {None, 18}
    if mode == "strict":
        assert admitted == 10
    else:
        assert admitted >= 10


def test_the_strict_mode_is_the_default_and_sees_a_burst_the_bucket_allows() -> None:
    assert FaultConfig().qps_mode == "strict"
    clock = FakeClock()
    counts = {}
    for mode in ("strict", "bucket"):
        config = FaultConfig(qps_limit=10.0, qps_mode=mode)  # type: ignore[arg-type]
        injector = FaultInjector(lambda config=config: config, clock=clock)
        clock.now = 500.0
        admitted = 0
        # ten calls at once after a quiet second, then ten evenly over the next 0.9 s
        for step in range(20):
            clock.now = 500.0 if step < 10 else 500.0 + (step - 9) * 0.09
            admitted += injector.admit() is None
        counts[mode] = admitted
    assert counts["strict"] == 10
    assert counts["bucket"] > 10
