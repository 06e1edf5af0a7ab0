"""`syncd reconcile --dry-run` and `syncd status` as a user runs them (click's CliRunner)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ledger.world import World
from ledgers import LedgerChoice

from syncd.cli import cli


@pytest.fixture
def world(tmp_path: Path, ledger_choice: LedgerChoice) -> Iterator[World]:
    w = World(
        tmp_path, [{"name": "photos"}, {"name": "shop", "gallery": "product"}], ledger_choice
    )
    yield w
    w.close()


def run(world: World, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-c", str(world.config_path)])


def test_dry_run_prints_the_plan_and_calls_nothing(world: World) -> None:
    for n in range(12):
        world.write(f"p{n:02}.jpg", n)
    (world.root() / "broken.jpg").write_bytes(b"not an image")
    world.write("s.jpg", 50, library="shop")
    result = run(world, "reconcile", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "library photos (similar): 13 files: 13 new or changed, 0 unchanged, 0 vanished" in lines
    assert "plan: 13 adds, 0 updates, 0 deletes, 0 held deletes, 0 vanished, 1 failures" in lines
    assert "adds (13):" in lines
    assert "  … and 3 more" in lines
    assert "  photos/broken.jpg: not an image (cannot identify image file)" in lines
    again = run(world, "reconcile", "--dry-run")
    assert again.stdout == result.stdout  # the first wrote nothing the second would see
    assert world.gallery() == {}  # nothing was called


def test_dry_run_of_one_library_shows_only_its_plan(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("s.jpg", 2, library="shop")
    result = run(world, "reconcile", "--dry-run", "--library", "shop")
    assert result.exit_code == 0, result.output
    assert "library photos" not in result.stdout
    assert "  shop/s.jpg" in result.stdout.splitlines()
    assert "photos/a.jpg" not in result.stdout


def test_dry_run_shows_updates_and_deletes_with_their_paths(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("b.jpg", 2)
    world.write("c.jpg", 3)
    world.scan()
    world.sync()
    world.move("a.jpg", "moved/a.jpg")
    world.remove("b.jpg")
    world.scan(after=1)
    result = run(world, "reconcile", "--dry-run")
    lines = result.stdout.splitlines()
    assert "  photos/moved/a.jpg: was a.jpg" in lines
    assert "vanished, waiting for delete_grace (1):" in lines
    world.scan(after=31)
    result = run(world, "reconcile", "--dry-run")
    assert "deletes (1):" in result.stdout.splitlines()
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("  photos/b.jpg")]
    assert line.startswith("  photos/b.jpg: cont_sign sign-")


def test_held_deletes_are_shown_and_a_dry_run_never_lets_them_go(
    tmp_path: Path, ledger_choice: LedgerChoice
) -> None:
    world = World(tmp_path, ledger=ledger_choice, max_delete_fraction=0.25)
    try:
        for n in range(12):
            world.write(f"{n}.jpg", n)
        world.scan()
        world.sync()
        for n in range(10):
            world.remove(f"{n}.jpg")
        world.scan()
        result = run(world, "reconcile", "--dry-run", "--allow-mass-delete")
        assert "held deletes (10):" in result.stdout.splitlines()
        assert "--allow-mass-delete would let 10 held deletes go" in result.stdout
        status = json.loads(run(world, "status", "--json").stdout)
        assert status["libraries"][0]["held_deletes"] == 10
    finally:
        world.close()


def test_an_unknown_library_is_a_usage_error(world: World) -> None:
    result = run(world, "reconcile", "--dry-run", "--library", "nope")
    assert result.exit_code == 2
    assert result.stderr == "--library: no library 'nope' in the config (photos, shop)\n"


def test_status_json_has_the_documented_shape(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("b.jpg", 2)
    (world.root() / "bad.jpg").write_bytes(b"nope")
    world.scan()
    world.sync()
    world.write("c.jpg", 3)
    world.scan(after=1)
    result = run(world, "status", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    documented = {"libraries", "paused", "fatal", "unconfigured", "unsettled_adds", "hosts"}
    assert documented | {"queue", "budget"} <= set(data)
    assert data["budget"] is None  # no api.daily_budget
    assert data["unsettled_adds"] == 0
    assert data["paused"] is None and data["fatal"] is None
    photos, shop = data["libraries"]
    assert photos == {
        "name": "photos",
        "gallery": "similar",
        "files": 4,
        "items": 3,
        "synced": 2,
        "pending": 1,
        "failed": 1,
        "held_deletes": 0,
    }
    assert shop["files"] == 0 and shop["gallery"] == "product"


def test_status_names_a_library_taken_out_of_the_config_whose_items_stay(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("s1.jpg", 2, library="shop")
    world.write("s2.jpg", 3, library="shop")
    world.scan()
    world.sync()
    text = world.config_path.read_text()
    world.config_path.write_text(text[: text.index('name = "shop"')].rsplit("[[library]]", 1)[0])

    result = run(world, "status")

    assert result.exit_code == 0, result.output
    assert (
        "not in the config: library shop (product), 2 files; its 2 items stay in the "
        "gallery and are no longer synced" in result.stdout.splitlines()
    )
    data = json.loads(run(world, "status", "--json").stdout)
    assert [lib["name"] for lib in data["libraries"]] == ["photos"]
    assert [(lib["name"], lib["items"]) for lib in data["unconfigured"]] == [("shop", 2)]


def test_status_failed_lists_each_failed_file_with_its_reason(world: World) -> None:
    world.write("good.jpg", 1)
    (world.root() / "bad.jpg").write_bytes(b"nope")
    world.scan()
    result = run(world, "status", "--failed")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "LIBRARY",
        "GALLERY",
        "FILES",
        "ITEMS",
        "SYNCED",
        "PENDING",
        "FAILED",
        "HELD",
    ]
    assert lines[1].split() == ["photos", "similar", "2", "1", "0", "1", "1", "0"]
    assert "failed files (1):" in lines
    assert "  photos/bad.jpg: not an image (cannot identify image file)" in lines


def test_status_before_any_scan_shows_empty_libraries(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.close()
    world.config.ledger.path.unlink()
    data = json.loads(run(world, "status", "--json").stdout)
    assert data["libraries"][0]["files"] == 0
    assert not world.config.ledger.path.exists()


def test_status_shows_a_pause_and_a_stopped_gallery(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    from syncd.api.baidu.codes import error_for
    from syncd.ledger.settings import GALLERY_STOP_PREFIX, PAUSE_KEY, put_setting
    from syncd.pauses import pause_for_quota, stop_for_setup_error

    now = datetime.now(UTC)
    with world.ledger.transaction() as session:
        put_setting(session, PAUSE_KEY, pause_for_quota(error_for(17), now).to_json(), 0.0)
        stop = stop_for_setup_error("similar", error_for(216017), now + timedelta(seconds=1))
        put_setting(session, GALLERY_STOP_PREFIX + "similar", stop.to_json(), 0.0)
    data = json.loads(run(world, "status", "--json").stdout)
    assert data["paused"]["code"] == 17
    assert data["fatal"]["similar"]["code"] == 216017
    text = run(world, "status").stdout
    assert "paused: daily request quota reached" in text
    assert "stopped: gallery similar is not initialized (error 216017): create the gallery" in text
