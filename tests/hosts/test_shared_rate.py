"""The account's call schedule in the ledger: hosts book slots that never
overlap, one host alone gets the whole rate, and a rate error slows every host down."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ledgers import LedgerChoice

from syncd.config import LedgerConfig
from syncd.gates.rate import DepartureWindow
from syncd.gates.shared_rate import GRANT_SECONDS
from syncd.ledger.call_slots import BOOKING_LEAD, RECOVERY_SECONDS, slow_down, take_slots
from syncd.ledger.schema import Ledger, open_ledger

QPS = 10.0
T0 = 1_800_000_000.0
#: seconds two calls' trips to the server may differ by, which the schedule still absorbs
ARRIVAL_JITTER = 0.015


@pytest.fixture
def ledger(tmp_path: Path, ledger_choice: LedgerChoice) -> Iterator[Ledger]:
    where = LedgerConfig(tmp_path / "ledger.db", ledger_choice.url)
    opened = open_ledger(where if ledger_choice.url else where.path)
    yield opened
    opened.close()


def book(ledger: Ledger, now: float, seconds: float = 0.25) -> tuple[float, ...]:
    with ledger.transaction() as session:
        return take_slots(session, QPS, seconds, now).slots


def test_one_host_alone_gets_the_whole_rate(ledger: Ledger) -> None:
    slots: list[float] = []
    now = T0
    while len(slots) < 100:
        slots += book(ledger, now)
        now = slots[-1]
    gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
    assert gaps == pytest.approx([1 / QPS] * len(gaps), abs=1e-6)


def test_three_hosts_booking_together_share_one_rate_without_overlap(ledger: Ledger) -> None:
    # each host books again once it spent its last booking: every 0.75 s, 0.25 s apart
    slots = [
        slot
        for turn in range(10)
        for host in range(3)
        for slot in book(ledger, T0 + 0.75 * turn + 0.01 * host)
    ]
    ordered = sorted(slots)
    assert len(set(slots)) == len(slots)
    assert all(b - a >= 1 / QPS - 1e-6 for a, b in zip(ordered, ordered[1:], strict=False))
    # together never faster than the account's rate, whoever booked
    assert len(slots) / (ordered[-1] - ordered[0] + 1 / QPS) <= QPS + 1e-6


def test_a_rate_error_slows_every_host_and_the_rate_climbs_back(ledger: Ledger) -> None:
    book(ledger, T0)
    with ledger.transaction() as session:
        lowered = slow_down(session, QPS, T0, factor=0.5, floor=0.5, reaction=1.0)
        # another host answered 18 for the same overload: no second halving
        again = slow_down(session, QPS, T0 + 0.1, factor=0.5, floor=0.5, reaction=1.0)
    assert lowered == QPS / 2
    assert again >= lowered, "one overload halved twice"
    with ledger.transaction() as session:
        other_host = take_slots(session, QPS, 1.0, T0 + 0.2)
    assert other_host.rate < QPS
    with ledger.transaction() as session:
        later = take_slots(session, QPS, 1.0, T0 + 0.2 + RECOVERY_SECONDS)
    assert later.rate == QPS


def test_a_rate_the_schedule_raises_is_adopted_by_the_shared_rate_at_once(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        assert take_slots(session, 3.0, 1.0, T0, "a").rate == 3.0
    with ledger.transaction() as session:
        assert take_slots(session, QPS, 1.0, T0 + 5.0, "a").rate == QPS


def test_slots_are_paced_with_a_margin_only_while_several_hosts_book(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        alone = take_slots(session, QPS, 1.0, T0, "a")
        shared = take_slots(session, QPS, 1.0, T0 + 0.5, "b")
    assert alone.slots[1] - alone.slots[0] == pytest.approx(1 / QPS)
    assert shared.slots[1] - shared.slots[0] > 1 / QPS
    assert shared.late < alone.late
    assert shared.slots[0] >= alone.slots[-1] + alone.late, "the joiner left no room"


def spent(booked: list[tuple[str, float, float]], lateness: Callable[[int], float]) -> list[float]:
    """When the booked slots (host, slot, late) leave: each call ``lateness(n)`` of its
    grant's allowance after its slot, then after a free place in its host's departure window
    (answers slower than the guard: each place held its full guard); a slot missed by more
    than its grant allows is given up, as ``SharedRateLimiter.acquire`` does."""
    windows: dict[str, DepartureWindow] = {}
    departures: list[float] = []
    for n, (host, slot, late) in enumerate(sorted(booked, key=lambda b: b[1])):
        window = windows.setdefault(host, DepartureWindow(QPS))
        ready = slot + late * lateness(n)
        ready = max(ready, window.earliest(ready))
        if ready - slot <= late:
            window.depart(ready)
            departures.append(ready)
    return sorted(departures)


@pytest.mark.parametrize("seed", range(4))
def test_three_hosts_interleaved_never_put_more_than_the_rate_in_a_sliding_second(
    ledger: Ledger, seed: int
) -> None:
    rng = random.Random(seed)
    booked: list[tuple[str, float, float]] = []
    now = T0
    for _ in range(150):
        # host a books alone for a second; then b and c join and all three book in turn,
        # each as many slots as it has calls waiting, some ahead of time, some after an idle
        host = "a" if now < T0 + 1.0 else rng.choice("abc")
        with ledger.transaction() as session:
            grant = take_slots(session, QPS, GRANT_SECONDS, now, host, rng.randint(1, 4))
        booked += [(host, slot, grant.late) for slot in grant.slots]
        now = max(now, grant.slots[-1] - rng.uniform(0.0, 0.6))
        if rng.random() < 0.03:
            now += rng.uniform(0.0, 1.5)  # every host idle for a while
    patterns: dict[str, Callable[[int], float]] = {
        "on time": lambda n: 0.0,
        "every call as late as its grant allows": lambda n: 1.0,
        "every other call late": lambda n: float(n % 2),
        "late at random": lambda n: rng.random(),
    }
    for name, lateness in patterns.items():
        departures = spent(booked, lateness)
        count = int(QPS)
        closest = min(b - a for a, b in zip(departures, departures[count:], strict=False))
        # the server counts at most QPS calls in any second, and calls arriving up to
        # ARRIVAL_JITTER apart from when they left still cannot squeeze an eleventh in
        assert closest > 1.0 + ARRIVAL_JITTER, (name, closest)
        assert len(departures) >= 0.97 * len(booked), f"{name}: slots given up"


def test_a_host_among_several_books_a_caught_up_schedule_a_little_ahead(ledger: Ledger) -> None:
    with ledger.transaction() as session:
        alone = take_slots(session, QPS, 0.25, T0, "a")
    idle = alone.slots[-1] + 1.0  # nobody booked for a while: the schedule is behind
    with ledger.transaction() as session:
        take_slots(session, QPS, 0.25, idle, "b")
        shared = take_slots(session, QPS, 0.25, idle + 0.5, "a")
    assert alone.slots[0] == T0, "a host alone spends its first slot at once"
    # its call gets the slot after the booking committed: the slot has not passed yet
    assert shared.slots[0] >= idle + 0.5 + BOOKING_LEAD
