"""The overview and its status over HTTP: ``/api/status`` is ``syncd status --json``'s
document, read anew after a start, and the account's rate now and next
(``api.qps_schedule``) beside the numbers."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import requests

from syncd.config import load_config
from syncd.console.server import ConsoleServer
from syncd.gallery.server import GalleryServer
from syncd.rate_schedule import parse_schedule

from .clients import BEARER, without_as_of
from .conftest import SCHEDULE, World, build_site


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


def test_api_status_is_the_status_json_document(world: World) -> None:
    answer = requests.get(f"{world.url}/api/status", headers=BEARER)
    assert answer.status_code == 200
    command = world.site.syncd("status", "--json")
    assert without_as_of(answer.json()) == without_as_of(json.loads(command.out))
    (photos,) = answer.json()["libraries"]
    assert (photos["synced"], photos["failed"], photos["held_deletes"]) == (3, 1, 11)


def test_each_api_status_reads_the_ledger_as_it_is_then(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    # no snapshot: a request after a change shows it, whatever the one before it read
    site = build_site(tmp_path, gallery_server)
    with ConsoleServer(load_config(site.config)) as server:
        first = requests.get(f"{server.url}/api/status", headers=BEARER)
        site.write("pics/new.jpg", 99)
        site.syncd("reconcile")
        answer = requests.get(f"{server.url}/api/status", headers=BEARER)
        page = requests.get(f"{server.url}/", headers=BEARER)
        command = json.loads(site.syncd("status", "--json").out)
    assert first.json()["libraries"][0]["synced"] == 3
    assert without_as_of(answer.json())["libraries"] == without_as_of(command)["libraries"]
    assert answer.json()["libraries"][0]["synced"] == 4
    assert '<td class="n" data-key="synced">4</td>' in page.text
