"""The one call-rate limiter every worker shares (SPEC §3 "rate", §8 "rate adherence").

Calls are paced smoothly: each ``acquire`` reserves the next free slot, slots are
``1 / rate`` seconds apart and never bunch up (a virtual-scheduling clock, i.e. a token
bucket of capacity one). A rate error halves the rate at once; successful calls bring it
back to the configured ceiling a small step at a time (AIMD).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Paces calls of all workers of one account to at most ``qps`` per second.

    ``qps`` is the ceiling (calls per second); ``floor`` the lowest rate a run of rate
    errors can push it to; ``decrease`` the factor applied on a rate error; a rate error
    within ``reaction`` seconds of the previous decrease is taken for the same overload
    (calls already in flight answer it too) and does not decrease again; every successful
    call adds ``qps / recovery_calls`` back.
    """

    def __init__(
        self,
        qps: float,
        *,
        floor: float = 0.5,
        decrease: float = 0.5,
        recovery_calls: int = 50,
        reaction: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if qps <= 0:
            raise ValueError(f"qps must be positive, got {qps}")
        self._ceiling = qps
        self._floor = min(floor, qps)
        self._decrease = decrease
        self._step = qps / max(1, recovery_calls)
        self._reaction = reaction
        self._clock = clock
        self._rate = qps
        self._next_slot = float("-inf")
        self._last_decrease = float("-inf")
        self._closed = False
        self._cond = threading.Condition()

    @property
    def rate(self) -> float:
        """The current pace in calls per second (between the floor and ``qps``)."""
        with self._cond:
            return self._rate

    @property
    def ceiling(self) -> float:
        """The configured ``qps`` the rate recovers to, in calls per second."""
        return self._ceiling

    def reserve(self) -> float:
        """Reserve the next call slot and return its time on the limiter's clock (seconds).

        Does not wait; ``acquire`` is ``reserve`` plus waiting for the slot.
        """
        with self._cond:
            return self._reserve_locked()

    def _reserve_locked(self) -> float:
        slot = max(self._clock(), self._next_slot)
        self._next_slot = slot + 1.0 / self._rate
        return slot

    def acquire(self) -> bool:
        """Wait for this caller's call slot; False (at once) when the limiter is closed.

        The wait is on a condition variable with the slot as deadline, so ``close`` wakes
        every waiter immediately.
        """
        with self._cond:
            if self._closed:
                return False
            slot = self._reserve_locked()
            while not self._closed:
                remaining = slot - self._clock()
                if remaining <= 0:
                    return True
                self._cond.wait(remaining)
            return False

    def on_rate_error(self) -> None:
        """An answer said "too many calls" (4, 18): slow down at once."""
        with self._cond:
            now = self._clock()
            if now - self._last_decrease < self._reaction:
                return
            self._last_decrease = now
            self._rate = max(self._floor, self._rate * self._decrease)
            # the server is counting against us right now: leave a full new interval free
            self._next_slot = max(self._next_slot, now + 1.0 / self._rate)

    def on_success(self) -> None:
        """A call went through: creep back towards the configured rate."""
        with self._cond:
            if self._rate < self._ceiling:
                self._rate = min(self._ceiling, self._rate + self._step)

    def close(self) -> None:
        """Refuse further calls and wake every waiting caller (shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        with self._cond:
            return self._closed
