"""The overview page over HTTP: the account's rate now and next (``api.qps_schedule``)
beside the numbers, and the light poll of each library's last activity."""

from __future__ import annotations

import html
import re

import requests

from syncd.rate_schedule import parse_schedule

from .conftest import PASSWORD, SCHEDULE, World

BEARER = {"Authorization": f"Bearer {PASSWORD}"}


def rate_line(page: str) -> tuple[str, float]:
    """The overview's rate text, and the time (seconds since the epoch) the page is as of."""
    text = re.search(r'<strong id="rate-text">([^<]*)</strong>', page)
    as_of = re.search(
        r'<p id="as-of" class="as-of">As of <span class="when" data-epoch="([0-9.]+)">', page
    )
    assert text is not None and as_of is not None, page
    return html.unescape(text.group(1)), float(as_of.group(1))


def test_the_overview_shows_the_scheduled_rate_now_and_the_next_one(
    scheduled_world: World,
) -> None:
    page = requests.get(f"{scheduled_world.url}/", headers=BEARER)
    assert page.status_code == 200
    text, as_of = rate_line(page.text)
    change = parse_schedule(SCHEDULE, 1000.0).change_at(as_of)
    upcoming = "00:00" if change.rate == 10.0 else "12:00"
    assert text == f"now {change.rate:g} calls/s, {change.next_rate:g} from {upcoming} (UTC+8)"
    # the same rate as /api/status, which is status --json's document
    rate = requests.get(f"{scheduled_world.url}/api/status", headers=BEARER).json()["rate"]
    assert rate["scheduled"] is True
    assert {rate["calls_per_second"], rate["next"]["calls_per_second"]} == {3.0, 10.0}
    assert rate["next"]["at_utc8"] in ("00:00", "12:00")


def test_without_a_schedule_the_overview_shows_api_qps_all_day(world: World) -> None:
    page = requests.get(f"{world.url}/", headers=BEARER)
    text, _ = rate_line(page.text)
    assert text == f"now {world.config.api.qps:g} calls/s, all day"
    assert requests.get(f"{world.url}/api/status", headers=BEARER).json()["rate"] == {
        "calls_per_second": world.config.api.qps,
        "scheduled": False,
        "next": None,
    }


def test_api_activity_lists_at_most_limit_calls_and_every_librarys_last_call(
    world: World,
) -> None:
    for seed in (61, 62):
        world.site.write(f"pics/limit-{seed}.jpg", seed)
    world.site.syncd("reconcile")  # in this process: its workers' calls are recorded here
    url = f"{world.url}/api/activity"
    full = requests.get(url, headers=BEARER).json()
    assert len(full["calls"]) >= 2
    one = requests.get(f"{url}?limit=1", headers=BEARER).json()
    assert one["calls"] == full["calls"][:1]
    # what the overview polls: no calls, only each library's last call time
    light = requests.get(f"{url}?limit=0", headers=BEARER).json()
    assert light["calls"] == []
    assert light["recorded"] is True
    assert light["last_by_library"] == full["last_by_library"]
    assert light["last_by_library"]["photos"] >= full["calls"][0]["at"]
    both = requests.get(f"{url}?limit=1&outcome=added&library=photos", headers=BEARER).json()
    assert [call["outcome"] for call in both["calls"]] == ["added"]
    for wrong in ("-1", "abc", "501", "1.5", "\u0661"):
        answer = requests.get(url, params={"limit": wrong}, headers=BEARER)
        assert answer.status_code == 400, wrong
        assert answer.json() == {"error": "limit: expected an integer 0..500"}
