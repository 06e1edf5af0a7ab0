"""The calls the sync workers made lately, as the console's activity page shows them.

The workers keep a ring of their recent call outcomes in memory (the same events they
log; ``syncd.app.console_activity`` reads it). The console reads it only when it runs in the same process as
the sync (``syncd run`` with ``[console] listen``); ``syncd console`` alone records none
and says so. Nothing here reads the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: outcomes of a call that did what it was for; the others ("retrying", "failed") are errors
SUCCEEDED = frozenset({"added", "adopted", "updated", "deleted"})
#: the outcomes a page offers to filter by, in this order
OUTCOMES = ("added", "adopted", "updated", "deleted", "retrying", "failed")
#: calls an activity page lists at most
ACTIVITY_ROWS = 500


@dataclass(frozen=True)
class Activity:
    """One call (or one library's share of a batch delete): when (seconds since the
    epoch), which library (None: no file names the items any more) and paths (the first
    few of ``count`` items), the operation, the gallery, its outcome (one of OUTCOMES) and
    the outcome in words (``failed: <reason>``)."""

    at: float
    library: str | None
    paths: tuple[str, ...]
    count: int
    op: str
    gallery: str
    outcome: str
    result: str

    @property
    def ok(self) -> bool:
        """Whether the call did what it was for."""
        return self.outcome in SUCCEEDED

    def as_dict(self) -> dict[str, Any]:
        """The call as ``/api/activity`` lists it."""
        return {
            "at": self.at,
            "library": self.library,
            "paths": list(self.paths),
            "items": self.count,
            "op": self.op,
            "gallery": self.gallery,
            "outcome": self.outcome,
            "result": self.result,
        }


def outcome_matches(wanted: str | None, outcome: str) -> bool:
    """Whether ``outcome`` is what a filter asked for: None (any), "ok" (a success),
    "error" (retrying or failed), or the outcome itself."""
    if wanted is None:
        return True
    if wanted == "ok":
        return outcome in SUCCEEDED
    if wanted == "error":
        return outcome not in SUCCEEDED
    return outcome == wanted


@dataclass(frozen=True)
class ActivityLog:
    """The calls recorded (newest first) and whether this process records any at all."""

    recorded: bool
    calls: list[Activity]

    def matching(self, library: str | None, outcome: str | None) -> list[Activity]:
        """The calls of ``library`` (all when None) whose outcome matches ``outcome``
        (:func:`outcome_matches`)."""
        return [
            call
            for call in self.calls
            if (library is None or call.library == library)
            and outcome_matches(outcome, call.outcome)
        ]

    def last_by_library(self) -> dict[str, float]:
        """Library -> when its newest recorded call was made (seconds since the epoch)."""
        last: dict[str, float] = {}
        for call in self.calls:
            if call.library is not None:
                last[call.library] = max(call.at, last.get(call.library, 0.0))
        return last


def _ring() -> Callable[..., list[Any]] | None:
    """The workers' ``recent`` function, or None when this build has no event ring."""
    try:
        from syncd.app.console_activity import recent_calls as recent
    except ImportError:
        return None
    return recent


def recent_activity(limit: int = ACTIVITY_ROWS) -> ActivityLog:
    """The newest ``limit`` calls the workers of this process recorded, newest first."""
    recent = _ring()
    if recent is None:
        return ActivityLog(False, [])
    calls = [_activity(event) for event in recent(limit)]
    calls.sort(key=lambda call: call.at, reverse=True)
    return ActivityLog(True, calls)


def _activity(event: Any) -> Activity:
    """One call event of the workers' ring as a call of the page."""
    return Activity(
        at=float(event.at),
        library=event.library,
        paths=tuple(event.paths),
        count=int(event.count),
        op=event.op,
        gallery=event.gallery,
        outcome=event.outcome,
        result=event.result,
    )
