"""The calls this process's sync workers made lately (their ring of call outcomes, the
same events they log), for the console's activity page and the overview's last activity.
Only a console in the same process as the sync (``syncd run``) finds any."""

from __future__ import annotations

from syncd.sync.events import CallEvent, recent

__all__ = ["CallEvent", "recent_calls"]


def recent_calls(limit: int) -> list[CallEvent]:
    """This process's last ``limit`` call outcomes, newest first."""
    return recent(limit)
