"""Plans that say how long: ``reconcile --dry-run`` and ``status`` count the calls a backlog
needs and how long they take at ``api.qps`` (and how many days at ``api.daily_budget``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ledger.world import World

from syncd.cli import cli


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, extra="[api]\nqps = 4\ndaily_budget = 7")
    yield w
    w.close()


def run(world: World, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-c", str(world.config_path)])


def test_dry_run_says_the_calls_and_how_long_they_take(world: World) -> None:
    for n in range(30):
        world.write(f"{n:02}.jpg", n)
    result = run(world, "reconcile", "--dry-run")
    assert result.exit_code == 0, result.output
    # 30 adds at 4 calls/s: 7.5 s; at 7 calls a day: 5 days
    assert (
        "calls: 30 (30 adds, 0 updates, 0 delete calls); about 8 s at api.qps = 4; "
        "5 days at api.daily_budget = 7"
    ) in result.stdout.splitlines()


def test_deletes_cost_one_call_per_thousand(tmp_path: Path) -> None:
    world = World(tmp_path, extra="[api]\nqps = 4", delete_grace=0.0)
    for n in range(5):
        world.write(f"{n}.jpg", n)
    world.scan()
    world.sync()
    for n in range(4):
        world.remove(f"{n}.jpg")
    result = run(world, "reconcile", "--dry-run")
    world.close()
    assert "calls: 1 (0 adds, 0 updates, 1 delete calls); about 0 s at api.qps = 4" in (
        result.stdout.splitlines()
    )


def test_status_says_the_calls_queued_and_when_they_are_done(world: World) -> None:
    for n in range(30):
        world.write(f"{n:02}.jpg", n)
    world.scan()
    before = time.time()
    data = json.loads(run(world, "status", "--json").stdout)
    queue = data["queue"]
    assert (queue["calls"], queue["adds"], queue["rate"], queue["rate_from"]) == (30, 30, 4.0, "api.qps")
    done = datetime.fromisoformat(queue["done_at"]).timestamp()
    assert before + 7.5 - 1 <= done <= time.time() + 7.5 + 1
    assert data["budget"] == {"used": 0, "limit": 7, "resets_at": data["budget"]["resets_at"]}
    text = run(world, "status").stdout
    assert "queued: 30 calls (30 adds, 0 updates, 0 delete calls for 0 items); done in about 8 s" in text
    assert "budget: 0 of 7 calls used today" in text
