"""The account's call rate, shared by every host of the ledger: ``api.qps`` (or the rate
``api.qps_schedule`` sets for the hour) is the account's, all hosts together.

One row (``settings`` key :data:`BUCKET_KEY`) holds the account's schedule: the current
rate (calls per second) and the next free call slot (seconds since the epoch). A host takes
a few consecutive slots at a time in a short transaction (:func:`take_slots`) and spends
them itself; slots never overlap, so all hosts together stay within the rate however many
there are, and a host alone gets all of it. While several hosts book, slots are spaced
:data:`SHARED_PACE` of the rate apart: a call of one host that leaves a little late (or
arrives late) cannot then meet the next host's call in one of the server's windows. A rate
error (:func:`slow_down`) halves the rate for every host; it then climbs back to the
ceiling over :data:`RECOVERY_SECONDS`. When the ceiling changes (the schedule's hour), the
row adopts it.

The row is locked while it is read and written (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite's transactions take the write lock up front).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from syncd.ledger.dialect import insert_or_ignore
from syncd.ledger.models import Setting

#: settings key of the shared call schedule
BUCKET_KEY = "rate_bucket"
#: seconds a rate pushed down by rate errors takes to climb back to the ceiling
RECOVERY_SECONDS = 5.0
#: the share of the rate slots are paced at while several hosts book: the margin (4 % of a
#: second at 10 calls/s) absorbs one host's call leaving or arriving late next to
#: another's; a host alone checks its own calls' window exactly and needs none
SHARED_PACE = 0.96
#: seconds after its last booking a host still counts as booking (then one is alone)
BOOKING_SECONDS = 2.0
#: seconds a host alone may spend a slot late (its own window check keeps that safe); a
#: host joining leaves this much free after the last slot booked, so those late calls
#: still leave before its first: one slot's time at 10 calls/s, the wait a full window of
#: the host's own calls can add (:data:`syncd.gates.rate.GUARD_SECONDS`) with room to spare
LATE_ALONE = 0.1
#: seconds a host among several may spend a slot late (within the margin of SHARED_PACE)
LATE_SHARED = 0.02
#: seconds ahead of the booking's own clock a host among several books when the schedule
#: has caught up with the present: the booking's commit takes a few milliseconds, and a
#: slot already passed when its call gets it would leave late, using up the margin of
#: SHARED_PACE that the network's jitter needs
BOOKING_LEAD = 0.02
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
    #: the ceiling the rate recovers to, as last booked (calls per second)
    ceiling: float = 0.0
    #: host -> when it last booked (seconds since the epoch)
    hosts: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Grant:
    """Call slots a host may use (seconds since the epoch, ascending) at ``rate`` calls/s;
    ``late``: seconds after its time a slot may still be spent (else it is given up)."""

    slots: tuple[float, ...]
    rate: float
    late: float = LATE_ALONE


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
    if ceiling > schedule.ceiling and schedule.rate >= schedule.ceiling:
        schedule.rate = ceiling  # the schedule's hour raised a full rate: take it at once
    schedule.ceiling = ceiling
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


def take_slots(
    session: Session,
    ceiling: float,
    seconds: float,
    now: float,
    host: str = "",
    most: int | None = None,
) -> Grant:
    """Book ``seconds`` worth of consecutive call slots (at least one; at most ``most``,
    the calls this host has waiting) at the shared rate, capped at ``ceiling`` calls per
    second (this host's ``api.qps`` for the hour), from ``now`` on, for ``host``."""
    schedule = _load(session, ceiling, now)
    recent = {h: at for h, at in schedule.hosts.items() if now - at < BOOKING_SECONDS}
    alone = not recent or set(recent) == {host}
    joining = bool(recent) and host not in recent
    recent[host] = now
    schedule.hosts = recent
    start = max(now if alone else now + BOOKING_LEAD, schedule.next_slot)
    if joining:
        # the host booking so far may still spend its slots late: leave them that room
        start += LATE_ALONE
    rate = schedule.rate if alone else schedule.rate * SHARED_PACE
    count = max(1, int(rate * seconds))
    if most is not None:
        count = max(1, min(count, most))
    step = 1.0 / rate
    slots = tuple(start + n * step for n in range(count))
    schedule.next_slot = start + count * step
    _store(session, schedule, now)
    return Grant(slots, schedule.rate, LATE_ALONE if alone else LATE_SHARED)


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
