"""How the console words times and counts, on the server; ``static/common.js`` words them
the same way in the browser, so a page reads the same before and after it refreshes.

Every absolute time is UTC with its zone (``2026-12-06 19:40:12 UTC``), beside a relative
one (``2 min ago``).
"""

from __future__ import annotations

import time
from datetime import datetime

#: the one absolute format (strftime), shared with ``static/common.js``
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def epoch_of(value: object) -> float | None:
    """Seconds since the epoch of ``value``: a number of seconds, or an ISO 8601 time with
    a zone; None for anything else (no time, or a naive ISO time whose zone is unknown)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment.timestamp() if moment.tzinfo is not None else None
    return None


def absolute_time(value: object) -> str:
    """``value`` (seconds or ISO time) as ``YYYY-MM-DD HH:MM:SS UTC``; "" for no time, and
    other text as it is."""
    seconds = epoch_of(value)
    if seconds is None:
        return "" if value is None else str(value)
    return time.strftime(TIME_FORMAT, time.gmtime(seconds))


def relative_time(value: object, now: float) -> str:
    """How long before (or after) ``now`` ``value`` is: "just now", "40 s ago", "2 min ago",
    "3 h ago", "2 days ago", "in 5 min"; "" for no time."""
    seconds = epoch_of(value)
    if seconds is None:
        return ""
    delta = now - seconds
    ahead = delta < 0
    delta = abs(delta)
    if delta < 5:
        return "just now"
    if delta < 60:
        amount = f"{int(delta)} s"
    elif delta < 3600:
        amount = f"{int(delta // 60)} min"
    elif delta < 86400:
        amount = f"{int(delta // 3600)} h"
    else:
        amount = counted(int(delta // 86400), "day")
    return f"in {amount}" if ahead else f"{amount} ago"


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun it counts: "1 hit", "2 hits", "0 hits"; ``plural`` when the noun
    does not just take an s ("1 file is", "3 files are")."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def rate_text(rate: object) -> str:
    """The account's rate of a status document's ``rate`` key: "now 3 calls/s, 10 from
    19:00 (UTC+8)" (``api.qps_schedule``'s next change, on the account's clock), or "now 10
    calls/s, all day"; "" for no rate."""
    if not isinstance(rate, dict):
        return ""
    text = f"now {_number(rate.get('calls_per_second'))} calls/s"
    upcoming = rate.get("next")
    if isinstance(upcoming, dict):
        rate_then = _number(upcoming.get("calls_per_second"))
        return f"{text}, {rate_then} from {upcoming.get('at_utc8')} (UTC+8)"
    return f"{text}, all day"


def _number(value: object) -> str:
    """A number as JavaScript's String() writes it: 3 for 3.0, 2.5 for 2.5."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
