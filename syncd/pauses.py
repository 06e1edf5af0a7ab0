"""Account pauses (quota) and galleries stopped by a setup error (docs/rules.md, Error classes).

Pure decisions and their JSON form; the ledger's key/value table stores them so that a
restart, ``status`` and ``reconcile`` all see the same state.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone

from syncd.api.baidu.codes import is_daily_quota, setup_advice
from syncd.errors import ApiError, BudgetSpentError, DailyQuotaError

#: the API's daily quota resets at midnight Beijing time
QUOTA_TIMEZONE = timezone(timedelta(hours=8))
#: a total-quota (19) pause is probed again after this many seconds
TOTAL_QUOTA_RETRY = 3600.0
#: a gallery stopped by a setup error is tried again after this many seconds
FATAL_RETRY = 300.0


def next_quota_reset(now: datetime) -> datetime:
    """The next 00:00 in UTC+8 strictly after ``now`` (an aware datetime), in UTC."""
    local = now.astimezone(QUOTA_TIMEZONE)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return midnight.astimezone(UTC)


@dataclass(frozen=True)
class AccountPause:
    """Every call of the account waits until ``until`` (aware UTC datetime)."""

    code: int
    message: str
    since: datetime
    until: datetime
    #: True: syncd's own daily budget (``api.daily_budget``) is spent, not the API's quota
    budget: bool = False

    def active(self, now: datetime) -> bool:
        """Whether calls must still wait at ``now``."""
        return now < self.until

    def describe(self) -> str:
        """One line for ``status``, the log and ``reconcile``."""
        local = self.until.astimezone(QUOTA_TIMEZONE).isoformat(timespec="seconds")
        if self.budget:
            return (
                f"{self.message}: calls paused until {local}, when the budget resets; "
                "raise api.daily_budget and run `syncd retry` to resume at once"
            )
        if is_daily_quota(self.code):
            return (
                f"daily request quota reached (error {self.code}): calls paused until {local}, "
                "when the quota resets; after raising it in the Baidu console, `syncd retry` "
                "resumes at once"
            )
        return (
            f"total request quota reached (error {self.code}): calls paused until {local}, "
            "then retried hourly; after raising it in the Baidu console, `syncd retry` "
            "resumes at once"
        )

    def to_json(self) -> str:
        """The JSON text stored in the ledger's key/value table."""
        return json.dumps(
            {
                "code": self.code,
                "message": self.message,
                "since": self.since.isoformat(),
                "until": self.until.isoformat(),
                "budget": self.budget,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> AccountPause:
        """Inverse of ``to_json``."""
        data = json.loads(text)
        return cls(
            code=int(data["code"]),
            message=str(data["message"]),
            since=datetime.fromisoformat(data["since"]),
            until=datetime.fromisoformat(data["until"]),
            budget=bool(data.get("budget", False)),
        )

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready form (``status --json``)."""
        return {
            "code": self.code,
            "message": self.message,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "budget": self.budget,
            "reason": self.describe(),
        }


def pause_for_quota(error: ApiError, now: datetime) -> AccountPause:
    """The pause a quota error (17 daily, 19 total) calls for, starting at ``now`` (aware)."""
    if isinstance(error, DailyQuotaError):
        until = next_quota_reset(now)
        if isinstance(error, BudgetSpentError):
            return AccountPause(error.code, error.message, now, until, budget=True)
    else:
        until = now + timedelta(seconds=TOTAL_QUOTA_RETRY)
    return AccountPause(code=error.code, message=error.message, since=now, until=until)


@dataclass(frozen=True)
class GalleryStop:
    """Calls to ``gallery`` stopped by a setup error; tried again from ``retry_at`` (UTC)."""

    gallery: str
    code: int
    message: str
    advice: str
    since: datetime
    retry_at: datetime

    def to_json(self) -> str:
        """The JSON text stored in the ledger's key/value table."""
        data = asdict(self)
        data["since"] = self.since.isoformat()
        data["retry_at"] = self.retry_at.isoformat()
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> GalleryStop:
        """Inverse of ``to_json``."""
        data = json.loads(text)
        return cls(
            gallery=str(data["gallery"]),
            code=int(data["code"]),
            message=str(data["message"]),
            advice=str(data["advice"]),
            since=datetime.fromisoformat(data["since"]),
            retry_at=datetime.fromisoformat(data["retry_at"]),
        )

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready form (``status --json``)."""
        return {
            "gallery": self.gallery,
            "code": self.code,
            "message": self.message,
            "reason": self.advice,
            "since": self.since.isoformat(),
            "retry_at": self.retry_at.isoformat(),
        }


def stop_for_setup_error(gallery: str, error: ApiError, now: datetime) -> GalleryStop:
    """The stop a fatal setup error on ``gallery`` calls for, starting at ``now`` (aware)."""
    return GalleryStop(
        gallery=gallery,
        code=error.code,
        message=error.message,
        advice=setup_advice(gallery, error),
        since=now,
        retry_at=now + timedelta(seconds=FATAL_RETRY),
    )
