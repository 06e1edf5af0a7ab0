"""The daily budget as the workers meet it: one unit per call, taken in the ledger once the
call's request is built, before it waits for its slot of the rate (``syncd.ledger.budget``;
``syncd.sync.context.SyncContext.depart``); a spent budget pauses the account like error
17 until the next quota day (00:00 UTC+8)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from syncd.errors import BudgetSpentError
from syncd.ledger.budget import spend_budget
from syncd.ledger.schema import Ledger
from syncd.pauses import QUOTA_TIMEZONE


def quota_day(seconds: float) -> str:
    """The quota day (the date in UTC+8) of ``seconds`` since the epoch."""
    return datetime.fromtimestamp(seconds, UTC).astimezone(QUOTA_TIMEZONE).date().isoformat()


class DailyBudget:
    """``limit`` calls per quota day for every process and host on the ledger."""

    def __init__(self, ledger: Ledger, limit: int, clock: Callable[[], float]) -> None:
        self._ledger = ledger
        self.limit = limit
        self._clock = clock

    def spend(self) -> None:
        """Take one call from today's budget; raises BudgetSpentError when it is spent."""
        with self._ledger.transaction() as session:
            if spend_budget(session, quota_day(self._clock()), self.limit):
                return
        raise BudgetSpentError(0, f"daily budget of {self.limit} calls spent (api.daily_budget)")
