"""Held deletes over HTTP, on a PostgreSQL ledger: the console reads (status, failures,
thumbnails) and lets a library's held deletes go."""

from __future__ import annotations

import json

import requests

from .clients import BEARER, kept_file_id, logged_in, without_as_of
from .conftest import World


def test_the_console_reads_and_releases_on_a_postgresql_ledger(pg_world: World) -> None:
    status = requests.get(f"{pg_world.url}/api/status", headers=BEARER)
    assert without_as_of(status.json()) == without_as_of(
        json.loads(pg_world.site.syncd("status", "--json").out)
    )
    browser, token = logged_in(pg_world)
    failures = browser.get(f"{pg_world.url}/failures").text
    assert "broken.jpg" in failures
    file_id = kept_file_id(pg_world, "pics/p01.jpg")
    assert browser.get(f"{pg_world.url}/thumb/{file_id}").headers["Content-Type"] == "image/jpeg"
    released = browser.post(
        f"{pg_world.url}/held/release", data={"library": "photos", "csrf": token}
    )
    assert released.status_code == 200
    assert "11 held deletes let go" in released.text
    after = json.loads(pg_world.site.syncd("status", "--json").out)
    assert after["libraries"][0]["held_deletes"] == 0
