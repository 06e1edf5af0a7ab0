"""How many calls a backlog costs and how long they take (``reconcile --dry-run`` and
``status`` say it): one call per add or update, one per 1000 deletes of a gallery."""

from __future__ import annotations

import math
from dataclasses import dataclass

from syncd.api.baidu.limits import MAX_DELETE_BATCH


def delete_calls(deletes: int) -> int:
    """Calls that delete ``deletes`` items of one gallery (1000 to a call)."""
    return math.ceil(deletes / MAX_DELETE_BATCH) if deletes > 0 else 0


@dataclass(frozen=True)
class CallPlan:
    """The calls a backlog needs, by operation."""

    adds: int = 0
    updates: int = 0
    #: items to delete, and the calls that takes
    deletes: int = 0
    delete_calls: int = 0

    @property
    def calls(self) -> int:
        """Every call of the plan."""
        return self.adds + self.updates + self.delete_calls

    def seconds(self, rate: float) -> float:
        """Seconds the calls take at ``rate`` calls per second."""
        return self.calls / rate if rate > 0 else math.inf

    def days(self, daily_budget: int) -> int:
        """Quota days the calls take at ``daily_budget`` calls a day (0: no cap, 0 days)."""
        return math.ceil(self.calls / daily_budget) if daily_budget > 0 else 0


def for_people(seconds: float) -> str:
    """A duration in seconds as a person reads it: "40 s", "3 min", "2 h 5 min", "3 d 4 h"."""
    if math.isinf(seconds):
        return "forever"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
