"""``api.qps_schedule``: rates by time of the account's day (UTC+8), checked strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import parse_config
from syncd.errors import ConfigError
from syncd.rate_schedule import parse_schedule

#: 2026-01-01T00:00:00Z, which is 08:00 in UTC+8
MIDNIGHT_UTC = 1_767_225_600.0
HOUR = 3600.0


def config_with(schedule: object) -> dict[str, object]:
    return {
        "api": {"qps": 10.0, "qps_schedule": schedule},
        "library": [{"name": "a", "root": ".", "gallery": "same_hq"}],
    }


def test_the_rate_follows_the_timetable_and_the_last_entry_wraps_past_midnight() -> None:
    schedule = parse_schedule("08:00,3 19:00,10", 10.0)
    eight = MIDNIGHT_UTC  # 08:00 UTC+8
    assert schedule.rate_at(eight - 1) == 10.0  # 07:59:59: still the 19:00 entry
    assert schedule.rate_at(eight) == 3.0
    assert schedule.rate_at(eight + 11 * HOUR - 1) == 3.0
    assert schedule.rate_at(eight + 11 * HOUR) == 10.0
    assert schedule.rate_at(eight + 17 * HOUR) == 10.0  # 01:00 the next day
    change = schedule.change_at(eight + HOUR)
    assert (change.rate, change.next_at, change.next_rate) == (3.0, eight + 11 * HOUR, 10.0)
    assert schedule.describe(eight + HOUR) == "3 calls/s, 10 from 19:00 (UTC+8)"
    assert schedule.change_at(eight + 12 * HOUR).next_at == eight + 24 * HOUR


def test_an_empty_schedule_is_api_qps_always() -> None:
    schedule = parse_config(config_with(""), Path(".")).api.rates
    assert schedule.rate_at(MIDNIGHT_UTC) == 10.0
    assert schedule.change_at(MIDNIGHT_UTC).next_at is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("08:00", "HH:MM,RATE"),
        ("8am,3", "HH:MM,RATE"),
        ("24:00,3", "no such time of day"),
        ("08:60,3", "no such time of day"),
        ("08:00,fast", "number of calls per second"),
        ("08:00,0", "positive"),
        ("08:00,-2", "positive"),
        ("19:00,10 08:00,3", "ascending"),
        ("08:00,3 08:00,4", "ascending"),
    ],
)
def test_a_bad_schedule_is_one_line_naming_the_key(text: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(text), Path("."))
    message = str(caught.value)
    assert message.startswith("api.qps_schedule: ")
    assert reason in message
    assert "\n" not in message


def test_a_schedule_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"api.qps_schedule: expected a string"):
        parse_config(config_with(["08:00,3"]), Path("."))
