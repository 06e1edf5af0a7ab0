"""API calls counted per host and minute (``call_log``).

The sync counts its calls in memory and adds them here at most once a second; the console's
chart, the daily budget and each host's recent rate are sums over these rows.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from syncd.ledger.dialect import insert_or_ignore
from syncd.ledger.models import CallLog

#: minutes of call counts kept: two days cover the daily budget's window and the chart
KEEP_MINUTES = 2 * 24 * 60


def record_calls(session: Session, host: str, minute: int, calls: int) -> None:
    """Add ``calls`` to ``host``'s count for ``minute`` (whole minutes since the epoch)."""
    if calls <= 0:
        return
    session.execute(insert_or_ignore(CallLog).values(host=host, minute=minute, calls=0))
    session.execute(
        update(CallLog)
        .where(CallLog.host == host, CallLog.minute == minute)
        .values(calls=CallLog.calls + calls)
    )
    session.execute(delete(CallLog).where(CallLog.minute < minute - KEEP_MINUTES))


def calls_per_minute(session: Session, since_minute: int) -> dict[int, int]:
    """All hosts' calls per minute from ``since_minute`` on: {minute: calls}."""
    rows = session.execute(
        select(CallLog.minute, func.sum(CallLog.calls))
        .where(CallLog.minute >= since_minute)
        .group_by(CallLog.minute)
    )
    return {int(minute): int(calls) for minute, calls in rows}


def calls_since(session: Session, since_minute: int, host: str | None = None) -> int:
    """Calls sent from ``since_minute`` on, by one host or (``host=None``) by all."""
    query = select(func.coalesce(func.sum(CallLog.calls), 0)).where(
        CallLog.minute >= since_minute
    )
    if host is not None:
        query = query.where(CallLog.host == host)
    return int(session.scalar(query) or 0)
