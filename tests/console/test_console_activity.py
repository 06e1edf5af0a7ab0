"""The activity page and ``/api/activity`` over HTTP: filters, ``limit``, and a console
without the service saying it records nothing."""

from __future__ import annotations

import pytest
import requests

from syncd.console import activity

from .clients import BEARER
from .conftest import World


def test_the_activity_page_filters_by_outcome_and_refuses_an_unknown_one(world: World) -> None:
    world.site.write("pics/fresh.jpg", 77)
    world.site.syncd("reconcile")  # in this process: its workers' calls are recorded here
    added = requests.get(f"{world.url}/api/activity?outcome=added", headers=BEARER).json()
    assert added["recorded"] is True
    assert "pics/fresh.jpg" in [p for call in added["calls"] for p in call["paths"]]
    assert {call["outcome"] for call in added["calls"]} == {"added"}
    failed = requests.get(f"{world.url}/api/activity?outcome=error", headers=BEARER).json()
    assert "pics/fresh.jpg" not in [p for call in failed["calls"] for p in call["paths"]]
    assert added["last_by_library"]["photos"] >= added["calls"][0]["at"]
    bogus = requests.get(f"{world.url}/activity?outcome=bogus", headers=BEARER)
    assert bogus.status_code == 400


def test_a_console_without_the_service_says_no_activity_is_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(activity, "_ring", lambda: lambda limit: [])
    world.server.app.beside_sync = False  # as `syncd console` runs it
    page = requests.get(f"{world.url}/activity", headers=BEARER)
    assert page.status_code == 200
    assert "No activity recorded" in page.text
    assert requests.get(f"{world.url}/api/activity", headers=BEARER).json()["recorded"] is False


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
