"""Per-intent retry delays of transient errors: 1 s doubling to 10 min, with jitter.

The delay is a function of the attempt count the ledger stores, so a restarted process
keeps spreading its retries instead of retrying everything at once.
"""

from __future__ import annotations

import random

BASE_DELAY = 1.0
MAX_DELAY = 600.0


def backoff_ceiling(attempts: int, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """The undithered delay in seconds after ``attempts`` failed attempts (1 -> base)."""
    if attempts <= 1:
        return min(base, cap)
    # exponent clamped so huge attempt counts cannot overflow the float
    return min(cap, base * 2.0 ** min(attempts - 1, 60))


def retry_delay(
    attempts: int,
    rng: random.Random | None = None,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
) -> float:
    """Seconds to wait before the next try after ``attempts`` failed attempts.

    "Equal jitter": uniformly between half and all of ``backoff_ceiling(attempts)``, so
    retries of many intents spread out but never come back sooner than half the schedule.
    """
    ceiling = backoff_ceiling(attempts, base, cap)
    draw = (rng or random).random()
    return ceiling / 2.0 + draw * ceiling / 2.0
