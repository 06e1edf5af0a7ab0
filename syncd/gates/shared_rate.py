"""The rate limiter of a ledger shared by several hosts: ``api.qps`` (or the rate
``api.qps_schedule`` sets for the hour) is the account's, so every host paces its calls on
one schedule kept in the ledger.

Each host books a fraction of a second of consecutive call slots at a time
(``syncd.ledger.call_slots.take_slots``) and its workers spend them in order; a rate error
slows the one schedule down for every host. A host alone gets the whole rate; three hosts
share it. Slots are wall-clock times (hosts keep their clocks in sync with NTP). A call also
waits for a free place in this host's departure window (``syncd.gates.rate``), and a slot
missed by more than the grant allows is given up rather than spent next to the next one, and
so is the slot of a call whose thread woke too late to leave within that time: a departure
is the clock read as the call is let go at the wire, and the other hosts' slots leave room
for only that much lateness.

A host books on demand: as many slots as it has calls waiting for one (up to the grant), when
one of them finds none left. A slot booked ahead for a call that never comes (the host ran
out of work) would stay a hole in the schedule no other host can fill.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from syncd.gates.rate import RateLimiter
from syncd.ledger.call_slots import LATE_ALONE, slow_down, take_slots
from syncd.ledger.schema import Ledger
from syncd.rate_schedule import RateSchedule

log = logging.getLogger("syncd.sync")

#: seconds of calls booked per visit to the ledger: small, so hosts interleave finely
GRANT_SECONDS = 0.25
#: seconds to wait before trying the ledger again when it could not be reached
LEDGER_RETRY = 1.0


class SharedRateLimiter(RateLimiter):
    """Paces this host's calls on the account's schedule in ``ledger``.

    ``qps``, ``floor``, ``decrease``, ``reaction`` and ``schedule`` mean what they mean for
    :class:`RateLimiter`; recovery runs in time (``syncd.ledger.call_slots.RECOVERY_SECONDS``),
    not per call. ``host``: this host's name in the ledger. ``clock``: seconds since the
    epoch.
    """

    def __init__(
        self,
        ledger: Ledger,
        qps: float,
        *,
        floor: float = 0.5,
        decrease: float = 0.5,
        reaction: float = 1.0,
        clock: Callable[[], float] = time.time,
        schedule: RateSchedule | None = None,
        host: str = "",
    ) -> None:
        super().__init__(
            qps, floor=floor, decrease=decrease, reaction=reaction, clock=clock,
            schedule=schedule, wall=clock,
        )  # fmt: skip
        self._ledger = ledger
        self._host = host
        self._slots: deque[float] = deque()
        #: seconds after its time a booked slot may still be spent (the last grant's)
        self._late = LATE_ALONE
        #: held by the one thread booking slots in the ledger
        self._booking = threading.Lock()
        self._ledger_failing = False
        #: callers waiting for a slot of their own (how many slots the next booking takes)
        self._wanting = 0

    def reserve(self) -> float:
        """The next booked slot (seconds since the epoch), booking more when none is left."""
        with self._cond:
            self._wanting += 1
        try:
            slot = self._next_slot_or_none()
            while slot is None:
                self._book()
                slot = self._next_slot_or_none()
                if slot is None and self.closed:
                    return self._clock()
            return slot
        finally:
            with self._cond:
                self._wanting -= 1

    def acquire(self) -> bool:
        """Wait for this host's next call slot and a free place in its window, and record
        the departure (call it right before the request leaves); False (at once) when the
        limiter is closed."""
        while True:
            if self.closed:
                return False
            slot = self.reserve()
            with self._cond:
                if self._depart_locked(slot, late=self._late):
                    return True
                if self._closed:
                    return False
            # the slot passed while the window was full: it is given up, not spent late

    def _next_slot_or_none(self) -> float | None:
        """Pop the next usable slot; slots missed by more than the grant allows are dropped."""
        with self._cond:
            late = self._clock() - self._late
            while self._slots and self._slots[0] < late:
                self._slots.popleft()
            return self._slots.popleft() if self._slots else None

    def _book(self) -> None:
        """Book slots in the ledger for the callers waiting (one thread at a time; the others
        find them queued)."""
        with self._booking:
            with self._cond:
                if self._slots or self._closed:
                    return
                ceiling = self._schedule.rate_at(self._wall())
                wanting = max(1, self._wanting)
            try:
                with self._ledger.transaction() as session:
                    grant = take_slots(
                        session, ceiling, GRANT_SECONDS, self._clock(), self._host, wanting
                    )
            except Exception as exc:
                if not self._ledger_failing:
                    log.warning("the ledger cannot book calls now (%s); calls wait for it",
                                type(exc).__name__)  # fmt: skip
                self._ledger_failing = True
                with self._cond:
                    self._cond.wait(LEDGER_RETRY)
                return
            if self._ledger_failing:
                log.info("the ledger books calls again")
                self._ledger_failing = False
            with self._cond:
                self._follow_schedule_locked()
                self._rate = grant.rate
                self._late = grant.late
                self._slots.extend(grant.slots)
                self._cond.notify_all()

    def on_rate_error(self) -> None:
        """An answer said "too many calls" (4, 18): slow every host down at once."""
        self._answered()
        now = self._clock()
        try:
            with self._ledger.transaction() as session:
                rate = slow_down(
                    session, self.ceiling, now,
                    factor=self._decrease, floor=self._floor, reaction=self._reaction,
                )  # fmt: skip
        except Exception:
            log.warning("the ledger cannot record a rate error now; slowing down here only")
            super().on_rate_error()
            return
        with self._cond:
            self._rate = rate
            # slots booked at the old rate would come too fast now
            self._slots.clear()

    def on_success(self) -> None:
        """Recovery runs on the shared schedule's clock: only the window learns the answer."""
        self._answered()
