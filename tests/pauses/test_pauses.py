"""Quota pauses and stopped galleries: when they end, what they say, how they are stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncd.api.baidu.codes import setup_advice
from syncd.errors import (
    DailyQuotaError,
    FatalSetupError,
    GalleryNotCreatedError,
    TokenError,
    TotalQuotaError,
)
from syncd.pauses import (
    AccountPause,
    GalleryStop,
    next_quota_reset,
    pause_for_quota,
    stop_for_setup_error,
)


def test_daily_quota_pause_lasts_until_midnight_beijing_time() -> None:
    # 15:30 UTC is 23:30 in UTC+8: the quota resets half an hour later
    now = datetime(2024, 5, 1, 15, 30, tzinfo=UTC)
    pause = pause_for_quota(DailyQuotaError(17, "Open api daily request limit reached"), now)
    assert pause.until == datetime(2024, 5, 1, 16, 0, tzinfo=UTC)
    assert pause.active(now)
    assert not pause.active(pause.until)
    assert "2024-05-02T00:00:00+08:00" in pause.describe()


def test_quota_reset_after_midnight_beijing_is_the_next_day() -> None:
    # 16:30 UTC is 00:30 the next day in UTC+8: the next reset is 23.5 h away
    now = datetime(2024, 5, 1, 16, 30, tzinfo=UTC)
    assert next_quota_reset(now) == datetime(2024, 5, 2, 16, 0, tzinfo=UTC)


def test_total_quota_pause_is_probed_again_after_an_hour() -> None:
    now = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    pause = pause_for_quota(TotalQuotaError(19, "Open api total request limit reached"), now)
    assert pause.until == now + timedelta(hours=1)
    assert "hourly" in pause.describe()


def test_pause_survives_the_ledger_round_trip() -> None:
    now = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    pause = pause_for_quota(DailyQuotaError(17, "daily"), now)
    assert AccountPause.from_json(pause.to_json()) == pause


def test_uninitialized_gallery_names_the_console_step() -> None:
    advice = setup_advice("similar", GalleryNotCreatedError(216017, "not initialized"))
    assert advice == (
        "gallery similar is not initialized (error 216017): create the gallery in the "
        "Baidu console (应用详情页 申请建库)"
    )
    assert "\n" not in advice


def test_refused_fresh_token_points_at_the_keys() -> None:
    advice = setup_advice("same_hq", TokenError(110, "Access token invalid or no longer valid"))
    assert "api.api_key" in advice and "110" in advice


def test_gallery_stop_is_retried_after_a_few_minutes_and_round_trips() -> None:
    now = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    stop = stop_for_setup_error("product", FatalSetupError(6, "No permission to access data"), now)
    assert now + timedelta(minutes=1) <= stop.retry_at <= now + timedelta(minutes=10)
    assert GalleryStop.from_json(stop.to_json()) == stop
    assert "error 6" in stop.advice
