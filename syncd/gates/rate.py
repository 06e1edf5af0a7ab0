"""The one call-rate limiter every worker shares: calls stay within the account's rate as
the server counts it, and use nearly all of it.

The server counts arrivals in sliding one-second windows; syncd controls departures, and a
call arrives some time after it leaves (network, upload, a busy server). Two rules keep
every server window within the rate:

- pacing: each ``acquire`` reserves the next free slot, slots are ``1 / rate`` seconds apart
  (a virtual-scheduling clock, i.e. a token bucket of capacity one), so calls never bunch up;
- a sliding window on departures (:class:`DepartureWindow`): a call counts against the
  window from when it leaves until the server surely counted it (its answer, or at most
  :data:`GUARD_SECONDS` after it left), plus one window. A call whose slot came late (a
  worker woke late, the previous answers were slow) waits for the window instead of
  going out right after the one before.

A call's departure is when its request leaves: the client waits at the wire, its body
encoded and signed (``ImageSearch.pace``), and the departure is the clock read after the
wait, under the limiter's lock, as the last step before the send. A call that leaves later
than its slot (its thread woke late) is recorded as it left, so the window counts it from
then. The next call keeps its own slot: the window, not the spacing, keeps every second
within the rate, and spacing each call from the previous one's late departure would add
every late wake-up to the interval (about 2 % of the rate on a loaded machine).

A rate error halves the rate at once; successful calls bring it back to the ceiling a small
step at a time (AIMD). The ceiling is ``api.qps``, or the rate ``api.qps_schedule`` sets
for the hour (:mod:`syncd.rate_schedule`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from syncd.rate_schedule import RateSchedule

#: seconds after a call left within which the server is taken to have counted it, when its
#: answer comes later than that (a slow upload): a bound on the network's arrival jitter
GUARD_SECONDS = 0.05
#: seconds added to every window: the client's and the server's clocks tick apart
WINDOW_SLACK = 0.002
#: a wait shorter than this (seconds) is rounding, not a wait
_TICK = 1e-6


class DepartureWindow:
    """At most ``count`` calls may be counted by the server in any ``count / rate`` seconds
    (``rate`` calls in any sliding second for a whole rate). Not thread-safe: the limiter's
    lock guards it.

    Each call holds a place from its departure until the latest moment the server may
    count it (``end``); a new call may leave at ``t`` only when fewer than ``count`` places
    end after ``t - window``.
    """

    def __init__(self, rate: float, guard: float = GUARD_SECONDS) -> None:
        self._guard = guard
        self._ends: list[list[float]] = []
        self.count = 1
        self.window = 1.0
        self.set_rate(rate)

    def set_rate(self, rate: float) -> None:
        """The server's rate, calls per second (a scheduled change of ``api.qps``)."""
        self.count = max(1, math.floor(rate))
        self.window = self.count / rate + WINDOW_SLACK

    def earliest(self, now: float) -> float:
        """The first time (seconds, the limiter's clock) a call may leave."""
        horizon = now - self.window
        self._ends = [end for end in self._ends if end[0] > horizon]
        if len(self._ends) < self.count:
            return now
        ends = sorted((end[0] for end in self._ends), reverse=True)
        return ends[self.count - 1] + self.window

    def depart(self, now: float) -> list[float]:
        """Record a call leaving at ``now``; its place, for :meth:`answered`."""
        place = [now + self._guard]
        self._ends.append(place)
        return place

    @staticmethod
    def answered(place: list[float], now: float) -> None:
        """The call of ``place`` was answered at ``now``: the server counted it by then."""
        place[0] = min(place[0], now)


class RateLimiter:
    """Paces calls of all workers of one account to at most ``qps`` per second.

    ``qps`` is the ceiling (calls per second), or ``schedule`` gives it by time of day;
    ``floor`` the lowest rate a run of rate errors can push it to; ``decrease`` the factor
    applied on a rate error; a rate error within ``reaction`` seconds of the previous
    decrease is taken for the same overload (calls already in flight answer it too) and
    does not decrease again; every successful call adds ``qps / recovery_calls`` back.
    ``clock``: the seconds slots are counted in; ``wall``: seconds since the epoch (for
    the schedule).
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
        schedule: RateSchedule | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if qps <= 0:
            raise ValueError(f"qps must be positive, got {qps}")
        self._schedule = schedule if schedule is not None else RateSchedule(qps)
        self._wall = wall
        self._clock = clock
        self._ceiling = self._schedule.rate_at(wall())
        self._floor_setting = floor
        self._floor = min(floor, self._ceiling)
        self._decrease = decrease
        self._recovery_calls = max(1, recovery_calls)
        self._step = self._ceiling / self._recovery_calls
        self._reaction = reaction
        self._rate = self._ceiling
        self._next_slot = float("-inf")
        self._last_decrease = float("-inf")
        self._closed = False
        self._cond = threading.Condition()
        self._window = DepartureWindow(self._ceiling)
        #: the place in the window of this thread's last call (answers come on its thread)
        self._mine = threading.local()

    @property
    def rate(self) -> float:
        """The current pace in calls per second (between the floor and ``qps``)."""
        with self._cond:
            return self._rate

    @property
    def ceiling(self) -> float:
        """The rate the limiter recovers to now (``api.qps`` or the scheduled rate), calls/s."""
        with self._cond:
            self._follow_schedule_locked()
            return self._ceiling

    @property
    def schedule(self) -> RateSchedule:
        """The rates by time of day this limiter follows."""
        return self._schedule

    def _follow_schedule_locked(self) -> None:
        """Adopt the scheduled rate when the hour changed it."""
        ceiling = self._schedule.rate_at(self._wall())
        if ceiling == self._ceiling:
            return
        at_full = self._rate >= self._ceiling
        self._ceiling = ceiling
        self._floor = min(self._floor_setting, ceiling)
        self._step = ceiling / self._recovery_calls
        self._rate = ceiling if at_full else min(self._rate, ceiling)
        self._window.set_rate(ceiling)

    def reserve(self) -> float:
        """Reserve the next call slot and return its time on the limiter's clock (seconds).

        Does not wait; ``acquire`` is ``reserve`` plus waiting for the slot and the window.
        """
        with self._cond:
            return self._reserve_locked()

    def _reserve_locked(self) -> float:
        self._follow_schedule_locked()
        slot = max(self._clock(), self._next_slot)
        self._next_slot = slot + 1.0 / self._rate
        return slot

    def acquire(self) -> bool:
        """Wait for this caller's call slot and a free place in the window, and record the
        departure; False (at once) when the limiter is closed. Call it right before the
        request leaves: the departure is the clock when it returns.

        The wait is on a condition variable with the slot as deadline, so ``close`` wakes
        every waiter immediately.
        """
        with self._cond:
            if self._closed:
                return False
            slot = self._reserve_locked()
            return self._depart_locked(slot, late=None)

    def _depart_locked(self, slot: float, late: float | None) -> bool:
        """Wait (holding ``_cond``) until ``slot`` and a free place in the window, then
        record the departure at the clock read last (a thread that woke late leaves late,
        and is recorded so). With ``late``: give up (False) once the call would leave more
        than ``late`` seconds after ``slot``, waiting or woken late (``earliest`` is never
        before now)."""
        while not self._closed:
            now = self._clock()
            ready = max(slot, self._window.earliest(now))
            if late is not None and ready - slot > late:
                return False
            if ready - now <= _TICK:
                self._mine.place = self._window.depart(now)
                return True
            self._cond.wait(ready - now)
        return False

    def _answered(self) -> None:
        """This thread's last call was answered: its place in the window ends now."""
        place = getattr(self._mine, "place", None)
        if place is not None:
            self._mine.place = None
            with self._cond:
                DepartureWindow.answered(place, self._clock())
                self._cond.notify_all()

    def on_rate_error(self) -> None:
        """An answer said "too many calls" (4, 18): slow down at once."""
        self._answered()
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
        self._answered()
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
