"""Fresh changes first (docs/rules.md): what the watcher saw a person do waits in a live lane
ahead of a scan's backlog, which goes newest file first; neither starves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledgers import LedgerChoice

from ledger.world import World
from syncd.ledger.models import LANE_BULK, LANE_LIVE
from syncd.ledger.queue import claim_due_intents
from syncd.sync.engine import bulk_share, claim_size


@pytest.fixture
def world(tmp_path: Path, ledger_choice: LedgerChoice) -> Iterator[World]:
    w = World(tmp_path, ledger=ledger_choice)
    yield w
    w.close()


def _claim(world: World, limit: int, lane: int | None = None) -> list[str]:
    with world.ledger.transaction() as session:
        intents = claim_due_intents(session, "w", world.clock + 1, limit=limit, lane=lane)
    return [i.relpath or "" for i in intents]


def test_a_scans_backlog_goes_newest_file_first(world: World) -> None:
    for n, age_days in enumerate([30, 1, 365, 7]):
        path = world.write(f"{n}.jpg", n)
        when = world.clock - age_days * 86400
        os.utime(path, (when, when))
    world.scan()
    assert _claim(world, 10) == ["1.jpg", "3.jpg", "0.jpg", "2.jpg"]


def test_a_file_the_watcher_saw_goes_ahead_of_the_backlog(world: World) -> None:
    for n in range(20):
        world.write(f"old/{n:02}.jpg", n)
    world.scan()
    world.write("dropped.jpg", 99)
    world.scan_paths(files=["dropped.jpg"], after=1)
    assert _claim(world, 1) == ["dropped.jpg"]
    assert len(_claim(world, 100, lane=LANE_BULK)) == 20


def test_a_rename_the_watcher_saw_takes_a_pending_add_into_the_live_lane(world: World) -> None:
    for n in range(10):
        world.write(f"{n}.jpg", n)
    world.scan()
    world.move("5.jpg", "renamed.jpg")
    world.scan_paths(files=["5.jpg", "renamed.jpg"], after=1)
    assert _claim(world, 1, lane=LANE_LIVE) == ["renamed.jpg"]


def test_the_bulk_lane_keeps_a_share_of_every_claim() -> None:
    for qps, concurrency in [(10.0, 4), (1000.0, 4), (2.0, 1), (0.5, 8)]:
        size = claim_size(qps, concurrency)
        assert size >= max(1, concurrency)
        assert size == 1 or 1 <= bulk_share(size) < size
