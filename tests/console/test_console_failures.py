"""The failures page and retry over HTTP: one failed file queued again by its id, and
a file name that is not UTF-8 shown escaped."""

from __future__ import annotations

import requests

from .clients import BEARER, broken_file_id, logged_in
from .conftest import World


def test_api_retry_queues_one_failed_file_again(world: World) -> None:
    file_id = broken_file_id(world)
    answer = requests.post(f"{world.url}/api/retry", headers=BEARER, json={"file": file_id})
    assert answer.status_code == 200
    assert answer.json()["files"] == 1
    unknown = requests.post(f"{world.url}/api/retry", headers=BEARER, json={"file": 987654})
    assert unknown.status_code == 404
    bad = requests.post(f"{world.url}/api/retry", headers=BEARER, json={"file": "-1"})
    assert bad.status_code == 400


def test_a_file_name_that_is_not_utf8_is_shown_escaped(world: World) -> None:
    name = b"caf\xe9-not-utf8.jpg"
    (world.site.root / name.decode("utf-8", "surrogateescape")).write_bytes(b"no picture")
    world.site.syncd("reconcile")
    browser, _ = logged_in(world)
    page = browser.get(f"{world.url}/failures")
    assert page.status_code == 200
    assert "caf\\xe9-not-utf8.jpg" in page.text
