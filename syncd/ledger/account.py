"""The account's call rate, shared by every host of the ledger (SPEC §3 "rate", §9.5).

One row (``settings`` key :data:`BUCKET_KEY`) holds the account's schedule: the current
rate (calls per second) and the next free call slot (seconds since the epoch). A host takes
a few consecutive slots at a time in a short transaction (:func:`take_slots`) and spends
them itself; slots never overlap, so all hosts together stay within the rate however many
there are, and a host alone gets all of it. A rate error (:func:`slow_down`) halves the
rate for every host; it then creeps back to ``api.qps`` over :data:`RECOVERY_SECONDS`.

The row is locked while it is read and written (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite's transactions take the write lock up front).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from syncd.ledger.dialect import insert_or_ignore
from syncd.ledger.models import Setting

#: settings key of the shared call schedule
BUCKET_KEY = "rate_bucket"
#: seconds a rate pushed down by rate errors takes to climb back to the ceiling
RECOVERY_SECONDS = 20.0
#: the schedule is never booked further ahead than this (seconds): a host whose clock ran
#: ahead cannot hold the others back for longer
MAX_AHEAD = 5.0


@dataclass
class _Schedule:
    #: calls per second now
    rate: float
    #: seconds since the epoch of the first slot nobody holds
    next_slot: float
    #: when ``rate`` was last worked out (recovery runs from there)
    rate_at: float
    #: when a rate error last lowered the rate
    slowed_at: float


@dataclass(frozen=True)
class Grant:
    """Call slots a host may use (seconds since the epoch, ascending) at ``rate`` calls/s."""

    slots: tuple[float, ...]
    rate: float


def _load(session: Session, ceiling: float, now: float) -> _Schedule:
    """The schedule, locked for this transaction (made on first use)."""
    query = select(Setting.value).where(Setting.key == BUCKET_KEY).with_for_update()
    text = session.scalar(query)
    if text is None:
        fresh = _Schedule(ceiling, now, now, 0.0)
        session.execute(
            insert_or_ignore(Setting).values(
                key=BUCKET_KEY, value=json.dumps(asdict(fresh)), updated_at=now
            )
        )
        text = session.scalar(query)
    try:
        schedule = _Schedule(**json.loads(text or ""))
    except (ValueError, TypeError):
        schedule = _Schedule(ceiling, now, now, 0.0)
    # recovery: a lowered rate climbs back linearly; never above this host's ceiling
    elapsed = max(0.0, now - schedule.rate_at)
    schedule.rate = min(ceiling, max(1e-3, schedule.rate) + elapsed * ceiling / RECOVERY_SECONDS)
    schedule.rate_at = now
    schedule.next_slot = min(schedule.next_slot, now + MAX_AHEAD)
    return schedule


def _store(session: Session, schedule: _Schedule, now: float) -> None:
    session.execute(
        update(Setting)
        .where(Setting.key == BUCKET_KEY)
        .values(value=json.dumps(asdict(schedule)), updated_at=now)
    )


def take_slots(session: Session, ceiling: float, seconds: float, now: float) -> Grant:
    """Book ``seconds`` worth of consecutive call slots (at least one) at the shared rate,
    capped at ``ceiling`` calls per second (this host's ``api.qps``), from ``now`` on."""
    schedule = _load(session, ceiling, now)
    count = max(1, int(schedule.rate * seconds))
    start = max(now, schedule.next_slot)
    step = 1.0 / schedule.rate
    slots = tuple(start + n * step for n in range(count))
    schedule.next_slot = start + count * step
    _store(session, schedule, now)
    return Grant(slots, schedule.rate)


def slow_down(
    session: Session, ceiling: float, now: float, *, factor: float, floor: float, reaction: float
) -> float:
    """A rate error (4, 18): multiply the shared rate by ``factor`` (not below ``floor``
    calls/s) unless another host did so within ``reaction`` seconds (the same overload).
    Returns the rate now (calls per second)."""
    schedule = _load(session, ceiling, now)
    if now - schedule.slowed_at >= reaction:
        schedule.rate = max(min(floor, ceiling), schedule.rate * factor)
        schedule.slowed_at = now
        # the server is counting against us right now: leave a full new interval free
        schedule.next_slot = max(schedule.next_slot, now + 1.0 / schedule.rate)
    _store(session, schedule, now)
    return schedule.rate
