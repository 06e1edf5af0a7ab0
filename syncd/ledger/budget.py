"""The daily budget (``api.daily_budget``): calls spent per quota day, all hosts together.

Each call takes its unit in one short transaction before it goes out, so the budget is
never overspent however many workers and hosts share it (docs/rules.md, Daily budget).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from syncd.ledger.dialect import insert_or_ignore
from syncd.ledger.models import BudgetDay


def spend_budget(session: Session, day: str, limit: int) -> bool:
    """Take one call from ``day``'s budget of ``limit`` calls; False when it is spent."""
    session.execute(insert_or_ignore(BudgetDay).values(day=day, used=0))
    done = session.execute(
        update(BudgetDay)
        .where(BudgetDay.day == day, BudgetDay.used < limit)
        .values(used=BudgetDay.used + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def budget_used(session: Session, day: str) -> int:
    """Calls spent from ``day``'s budget."""
    return int(session.scalar(select(BudgetDay.used).where(BudgetDay.day == day)) or 0)
