"""Per-intent retry delays: 1 s doubling to 10 min, jittered, from the stored attempt count."""

from __future__ import annotations

import random

import pytest

from syncd.gates.backoff import backoff_ceiling, retry_delay


def test_delay_doubles_from_one_second_to_ten_minutes() -> None:
    ceilings = [backoff_ceiling(n) for n in range(1, 13)]
    assert ceilings[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert ceilings[-1] == 600.0
    assert backoff_ceiling(10_000) == 600.0


@pytest.mark.parametrize("attempts", [1, 3, 8, 40])
def test_jittered_delay_stays_between_half_and_all_of_the_schedule(attempts: int) -> None:
    rng = random.Random(attempts)
    ceiling = backoff_ceiling(attempts)
    delays = [retry_delay(attempts, rng) for _ in range(500)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)


def test_retries_of_many_intents_spread_out() -> None:
    rng = random.Random(7)
    delays = {round(retry_delay(6, rng), 3) for _ in range(100)}
    assert len(delays) > 50
