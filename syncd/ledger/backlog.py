"""How much work the ledger holds: pending intents, vanished files waiting out their grace,
items by state. Each count is defined here once; the engine, the daemon, ``reconcile`` and
``/metrics`` read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from syncd.estimate import CallPlan, delete_calls
from syncd.ledger.counters import item_counts
from syncd.ledger.models import ITEM_PENDING, File, Item
from syncd.paths.states import FILE_VANISHED


def _pending(galleries: Sequence[str] | None) -> ColumnElement[bool]:
    """An intent still to be sent (of ``galleries``, or of all when None)."""
    pending = and_(Item.state == ITEM_PENDING, Item.op.is_not(None))
    return pending if galleries is None else and_(pending, Item.gallery.in_(galleries))


def _waiting_vanish() -> ColumnElement[bool]:
    """A vanished file whose item may still be deleted once its grace is over."""
    return and_(File.state == FILE_VANISHED, File.content_hash.is_not(None))


def pending_intents(session: Session, galleries: Sequence[str] | None = None) -> int:
    """Intents still to be sent, of ``galleries`` (all when None): from the counts the
    writes keep (syncd.ledger.counters)."""
    return sum(
        n
        for (_gallery, state, op), n in item_counts(session, galleries).items()
        if state == ITEM_PENDING and op is not None
    )


@dataclass(frozen=True)
class VanishedWait:
    """Vanished files waiting out ``watch.delete_grace``, and when the first vanished."""

    files: int
    #: epoch seconds of the earliest vanish, None when none waits
    first_at: float | None


def vanished_waiting(session: Session) -> VanishedWait:
    """The vanished files whose deletes are still to come."""
    files, first = session.execute(
        select(func.count(), func.min(File.vanished_at)).where(_waiting_vanish())
    ).one()
    return VanishedWait(int(files or 0), None if first is None else float(first))


@dataclass(frozen=True)
class Backlog:
    """What a one-shot sync leaves pending (``reconcile``'s report)."""

    pending: int
    #: of those, the ones waiting on a backoff after errors (not on the deletion latency)
    retrying: int
    #: epoch seconds when the first of them is due
    next_due: float | None


def backlog(session: Session, galleries: Sequence[str]) -> Backlog:
    """Pending intents of ``galleries``: how many, how many retry after errors, next due."""
    pending, retrying, next_due = session.execute(
        select(
            func.count(),
            # an API error, not our own (no code) nor the deletion latency's wait
            func.count(case((and_(Item.error_code.is_not(None), Item.latency_until.is_(None)), 1))),
            func.min(Item.next_attempt_at),
        ).where(_pending(galleries))
    ).one()
    return Backlog(
        int(pending or 0), int(retrying or 0), None if next_due is None else float(next_due)
    )


def backing_off() -> ColumnElement[bool]:
    """An intent waiting on a backoff after errors (not on the deletion latency)."""
    return and_(_pending(None), Item.attempts > 0, Item.latency_until.is_(None))


def queued_calls(session: Session, galleries: Sequence[str] | None = None) -> CallPlan:
    """The calls the pending intents of ``galleries`` (all when None) need."""
    adds = updates = deletes = calls = 0
    # from the counts the writes keep (syncd.ledger.counters): no pass over the items
    for (_gallery, state, op), count in sorted(
        item_counts(session, galleries).items(), key=lambda kv: (kv[0][0], kv[0][2] or "")
    ):
        if state != ITEM_PENDING or op is None:
            continue
        if op == "add":
            adds += count
        elif op == "update":
            updates += count
        else:
            deletes += count
            calls += delete_calls(count)
    return CallPlan(adds, updates, deletes, calls)


def items_by_state(session: Session) -> dict[tuple[str, str], int]:
    """(gallery, item state) -> items, for ``/metrics`` (from the counts the writes keep)."""
    out: dict[tuple[str, str], int] = {}
    for (gallery, state, _op), n in item_counts(session).items():
        out[(gallery, state)] = out.get((gallery, state), 0) + n
    return out
