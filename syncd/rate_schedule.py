"""The account's call rate by time of day (``api.qps_schedule``), in the account's time zone.

A schedule is a timetable in rclone's ``--bwlimit`` style: ``"08:00,3 19:00,10"`` means
3 calls per second from 08:00 and 10 from 19:00 until 08:00 the next day (the last entry
wraps past midnight). Times are the account's day, UTC+8, the same day as the API's daily
quota. An empty schedule means ``api.qps`` at all hours. Imports nothing of syncd.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: the account's day (and the API's quota day) runs from 00:00 UTC+8
ACCOUNT_DAY_OFFSET: Final = 8 * 3600.0
_DAY: Final = 86400.0
_ENTRY = re.compile(r"(\d{1,2}):(\d{2}),(.+)")


@dataclass(frozen=True)
class RateChange:
    """The rate in force at a moment and the next change: ``rate`` calls/s now;
    ``next_at`` (seconds since the epoch) and ``next_rate`` when the schedule has one."""

    rate: float
    next_at: float | None = None
    next_rate: float | None = None


@dataclass(frozen=True)
class RateSchedule:
    """Calls per second by time of the account's day. ``entries``: (seconds after 00:00
    UTC+8, calls/s), ascending; empty means ``qps`` always."""

    qps: float
    entries: tuple[tuple[float, float], ...] = ()

    def rate_at(self, when: float) -> float:
        """Calls per second at ``when`` (seconds since the epoch)."""
        return self.change_at(when).rate

    def change_at(self, when: float) -> RateChange:
        """The rate at ``when`` (seconds since the epoch) and the next change after it."""
        if not self.entries:
            return RateChange(self.qps)
        shifted = when + ACCOUNT_DAY_OFFSET
        day_start = shifted - shifted % _DAY
        into = shifted - day_start
        current = self.entries[-1][1]  # before the first entry: the last one, wrapped
        for start, rate in self.entries:
            if start <= into:
                current = rate
                continue
            return RateChange(current, day_start + start - ACCOUNT_DAY_OFFSET, rate)
        first_start, first_rate = self.entries[0]
        return RateChange(current, day_start + _DAY + first_start - ACCOUNT_DAY_OFFSET, first_rate)

    def describe(self, when: float) -> str:
        """``"3 calls/s, 10 from 19:00 (UTC+8)"``: the rate at ``when`` and the next."""
        change = self.change_at(when)
        text = f"{change.rate:g} calls/s"
        if change.next_at is not None and change.next_rate != change.rate:
            text += f", {change.next_rate:g} from {clock_time(change.next_at)} (UTC+8)"
        return text


    def document(self, when: float) -> dict[str, object]:
        """The rate at ``when`` and the next change, for ``status --json``: calls/s, and
        the next change's time (seconds since the epoch, and ``HH:MM`` UTC+8) and rate."""
        change = self.change_at(when)
        upcoming: dict[str, object] | None = None
        if change.next_at is not None and change.next_rate != change.rate:
            upcoming = {
                "at": change.next_at,
                "at_utc8": clock_time(change.next_at),
                "calls_per_second": change.next_rate,
            }
        return {"calls_per_second": change.rate, "scheduled": bool(self.entries),
                "next": upcoming}  # fmt: skip


def clock_time(when: float) -> str:
    """``"HH:MM"`` of ``when`` (seconds since the epoch) on the account's clock (UTC+8)."""
    minutes = int(((when + ACCOUNT_DAY_OFFSET) % _DAY) // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_schedule(text: str, qps: float) -> RateSchedule:
    """Read a timetable such as ``"08:00,3 19:00,10"``; ``qps`` is the rate when ``text``
    is empty. Raises ValueError with a one-line reason."""
    entries: list[tuple[float, float]] = []
    for word in text.split():
        match = _ENTRY.fullmatch(word)
        if match is None:
            raise ValueError(f'expected entries "HH:MM,RATE" separated by spaces, got "{word}"')
        hours, minutes, rate_text = int(match[1]), int(match[2]), match[3]
        if hours > 23 or minutes > 59:
            raise ValueError(f'"{word}": no such time of day (00:00 to 23:59)')
        try:
            rate = float(rate_text)
        except ValueError:
            raise ValueError(f'"{word}": the rate must be a number of calls per second') from None
        if not rate > 0 or rate == float("inf"):
            raise ValueError(f'"{word}": the rate must be a positive number of calls per second')
        start = hours * 3600.0 + minutes * 60.0
        if entries and start <= entries[-1][0]:
            raise ValueError(f'"{word}": times must be in ascending order within the day')
        entries.append((start, rate))
    return RateSchedule(qps, tuple(entries))
