"""A call's departure is the clock read as the limiter lets it go, not its slot: a slot of the
shared schedule is not spent later than its grant allows, however late the thread woke."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from syncd.gates.shared_rate import SharedRateLimiter
from syncd.ledger.call_slots import BUCKET_KEY, LATE_ALONE
from syncd.ledger.models import Setting
from syncd.ledger.schema import Ledger, open_ledger

T0 = 1_800_000_000.0


class CountingClock:
    """A clock that moves only when told, and counts how often it was read."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.reads = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.reads += 1
            return self.now

    def read_again(self, times: int) -> None:
        """Wait until the clock was read ``times`` more times (a waiting limiter reads it
        each time its wait ends)."""
        target = self.reads + times
        while self.reads < target:
            time.sleep(0.001)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = open_ledger(tmp_path / "ledger.db")
    yield opened
    opened.close()


def next_free_slot(ledger: Ledger) -> float:
    """The first slot of the account's schedule no host holds (seconds since the epoch)."""
    with ledger.transaction() as session:
        text = session.scalar(select(Setting.value).where(Setting.key == BUCKET_KEY))
    return float(json.loads(text or "{}")["next_slot"])


def test_a_booked_slot_is_given_up_by_a_call_that_woke_later_than_its_grant_allows(
    ledger: Ledger,
) -> None:
    clock = CountingClock(T0)
    limiter = SharedRateLimiter(ledger, 10.0, clock=clock, host="solo")
    assert limiter.acquire()  # slot T0, left on time
    clock.now = T0 + 0.05
    late = threading.Thread(target=limiter.acquire)
    late.start()
    while next_free_slot(ledger) < T0 + 0.2 - 1e-6:  # it booked its slot, T0 + 0.1
        time.sleep(0.001)
    clock.read_again(4)  # and waits for it
    woke = T0 + 0.1 + LATE_ALONE + 0.05
    clock.now = woke  # its thread woke later than a host alone may spend a slot late
    late.join(timeout=10)
    assert not late.is_alive()
    # the slot was given up and the call left on a slot booked as it woke: the schedule's
    # next slot is a full interval after the call left, not next to it
    assert next_free_slot(ledger) >= woke + 0.1 - 1e-6
