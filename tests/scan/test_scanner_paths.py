"""Targeted scans: the daemon looks again only at the paths that settled.

Each test changes real files, scans only the changed paths into a real ledger, checks
what the sync engine would call, and then checks that a full scan finds nothing the
targeted one missed: the ledger already says what the whole disk says.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger.world import Call, World

from syncd.ledger.schema import open_ledger
from syncd.paths.handoff import LookAgain
from syncd.scan.scanner import scan_paths


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def synced_world(tmp_path: Path, paths: list[str], **config: float | str) -> World:
    """A World whose ``paths`` are written, scanned and synced."""
    world = World(tmp_path, **config)
    for n, path in enumerate(paths):
        world.write(path, n)
    world.scan()
    world.sync()
    return world


def assert_a_full_scan_agrees(world: World) -> None:
    """A full scan finds the ledger already up to date (nothing new, changed or gone)."""
    lib = world.scan().libraries[0]
    assert (lib.new, lib.changed, lib.vanished) == (0, 0, 0)


def test_a_new_file_is_recorded_and_added(world: World) -> None:
    world.write("a.jpg", 1)
    world.scan()
    world.sync()
    world.write("b.jpg", 2)
    result = world.scan_paths(files=["b.jpg"])
    assert (result.seen, result.new, result.unchanged) == (1, 1, 0)
    assert world.sync() == [Call("add", "b.jpg", "similar")]
    assert_a_full_scan_agrees(world)


def test_only_the_paths_given_are_looked_at(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("gone.jpg", 2)
    world.scan()
    world.sync()
    world.write("b.jpg", 3)
    world.write("not-told.jpg", 4)
    world.remove("gone.jpg")  # the watcher has not said so yet
    result = world.scan_paths(files=["b.jpg"])
    assert (result.seen, result.new, result.vanished) == (1, 1, 0)
    assert sorted(world.files()) == ["a.jpg", "b.jpg", "gone.jpg"]
    assert world.files()["gone.jpg"].state == "live"


def test_a_changed_file_is_read_again(world: World) -> None:
    world.write("a.jpg", 1)
    world.scan()
    world.sync()
    before = world.files()["a.jpg"].content_hash
    world.write("a.jpg", 2)
    result = world.scan_paths(files=["a.jpg"], after=1)
    assert (result.changed, result.hashed) == (1, 1)
    assert world.files()["a.jpg"].content_hash != before
    assert [c.op for c in world.sync()] == ["add", "delete"]
    assert_a_full_scan_agrees(world)


def test_a_new_folder_is_walked_with_paths_relative_to_the_root(world: World) -> None:
    world.write("keep.jpg", 1)
    world.scan()
    world.sync()
    world.write("new/a.jpg", 2)
    world.write("new/deep/b.png", 3)
    world.write("new/.hidden/c.jpg", 4)  # ignored names stay out, as in a full scan
    world.write("new/d.jpg.part", 5)
    (world.root() / "new" / "notes.txt").write_text("not an image name")
    result = world.scan_paths(subtrees=["new"])
    assert (result.seen, result.new) == (2, 2)
    assert sorted(world.files()) == ["keep.jpg", "new/a.jpg", "new/deep/b.png"]
    assert sorted(c.path for c in world.sync()) == ["new/a.jpg", "new/deep/b.png"]
    assert_a_full_scan_agrees(world)


def test_path_globs_judge_paths_from_the_root_in_a_folder_scan(tmp_path: Path) -> None:
    world = World(
        tmp_path,
        [{"name": "photos", "include": ["*.jpg"], "exclude": ["shoes/raw/**", "shoes/*/x.jpg"]}],
    )
    try:
        world.write("keep.jpg", 1)
        world.scan()
        world.write("shoes/a.jpg", 2)
        world.write("shoes/raw/b.jpg", 3)
        world.write("shoes/red/x.jpg", 4)
        world.write("shoes/red/y.jpg", 5)
        world.scan_paths(subtrees=["shoes"])
        assert sorted(world.files()) == ["keep.jpg", "shoes/a.jpg", "shoes/red/y.jpg"]
        world.scan_paths(files=["shoes/raw/b.jpg", "shoes/red/x.jpg"], subtrees=["shoes/raw"])
        assert sorted(world.files()) == ["keep.jpg", "shoes/a.jpg", "shoes/red/y.jpg"]
        assert_a_full_scan_agrees(world)
    finally:
        world.close()


def test_a_removed_folder_vanishes_its_files_and_no_neighbour(tmp_path: Path) -> None:
    paths = ["dir/a.jpg", "dir/sub/b.jpg", "dir-2/c.jpg", "dir.jpg", "dirx/d.jpg"]
    world = synced_world(tmp_path, paths, delete_grace=5.0)
    try:
        shutil.rmtree(world.root() / "dir")
        result = world.scan_paths(vanished=["dir"], after=1)
        assert (result.vanished, result.held) == (2, 0)
        states = {path: row.state for path, row in world.files().items()}
        assert states == {
            "dir/a.jpg": "vanished",
            "dir/sub/b.jpg": "vanished",
            "dir-2/c.jpg": "live",
            "dir.jpg": "live",
            "dirx/d.jpg": "live",
        }
        assert world.sync() == []  # delete_grace first
        world.scan(after=6)
        assert sorted(c.path for c in world.sync()) == ["dir/a.jpg", "dir/sub/b.jpg"]
    finally:
        world.close()


def test_a_path_said_vanished_that_is_back_is_kept(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("b.jpg", 2)
    world.scan()
    world.sync()
    result = world.scan_paths(vanished=["a.jpg"], after=1)  # back before the scan looked
    assert (result.seen, result.unchanged, result.vanished) == (1, 1, 0)
    assert world.files()["a.jpg"].state == "live"
    world.scan(after=100)
    assert world.sync() == []


def test_a_file_that_became_a_folder_is_walked(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("b.jpg", 2)
    world.scan()
    world.sync()
    world.remove("a.jpg")
    world.write("a.jpg/inside.jpg", 3)
    result = world.scan_paths(files=["a.jpg"], after=1)
    assert (result.new, result.vanished) == (1, 1)
    assert world.files()["a.jpg"].state == "vanished"
    assert world.files()["a.jpg/inside.jpg"].state == "live"
    assert_a_full_scan_agrees(world)


def test_a_missing_root_vanishes_nothing(tmp_path: Path) -> None:
    world = synced_world(tmp_path, ["a.jpg", "b.jpg"])
    try:
        shutil.rmtree(world.root())
        result = world.scan_paths(vanished=["a.jpg"], files=["b.jpg"], after=1)
        assert "does not exist" in (result.unavailable or "")
        assert result.vanished == 0
        assert {row.state for row in world.files().values()} == {"live"}
        world.scan(after=100)
        assert world.sync() == []
    finally:
        world.close()


def test_a_targeted_scan_that_would_empty_the_library_sends_no_deletes(tmp_path: Path) -> None:
    world = synced_world(tmp_path, ["dir/a.jpg", "dir/b.jpg"])
    try:
        shutil.rmtree(world.root() / "dir")  # an unmounted share looks like this
        result = world.scan_paths(vanished=["dir"], after=1)
        assert "empty" in (result.unavailable or "")
        assert result.vanished == 0
        assert {row.state for row in world.files().values()} == {"live"}
        world.scan(after=100)
        assert world.sync() == []
    finally:
        world.close()


def test_a_targeted_mass_vanish_holds_its_deletes(tmp_path: Path) -> None:
    paths = [f"big/{n}.jpg" for n in range(12)] + [f"rest/{n}.jpg" for n in range(20)]
    world = synced_world(tmp_path, paths, max_delete_fraction=0.25)
    try:
        shutil.rmtree(world.root() / "big")  # 12 of 32 files: more than 25 %, at least 10
        result = world.scan_paths(vanished=["big"], after=1)
        assert (result.vanished, result.held) == (12, 12)
        world.scan(after=100)
        assert world.sync() == []
        world.scan(after=1, allow_mass_delete=True)
        assert [c.op for c in world.sync()] == ["delete"] * 12
    finally:
        world.close()


def test_a_folder_reached_through_a_symlink_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.jpg").write_bytes(b"")
    world = synced_world(tmp_path, ["a.jpg"])
    try:
        shutil.copyfile(world.root() / "a.jpg", outside / "o.jpg")
        os.symlink(outside, world.root() / "link")
        result = world.scan_paths(files=["link/o.jpg"], subtrees=["link"], after=1)
        assert result.seen == 0
        assert sorted(world.files()) == ["a.jpg"]
        assert_a_full_scan_agrees(world)
    finally:
        world.close()


def test_a_symlink_named_like_an_image_is_skipped_with_a_reason(world: World) -> None:
    target = world.write("a.jpg", 1)
    world.scan()
    os.symlink(target, world.root() / "link.jpg")
    result = world.scan_paths(files=["link.jpg"], after=1)
    assert [(s.relpath, s.reason) for s in result.skipped] == [
        ("link.jpg", "symlink (follow_symlinks = false)")
    ]
    assert sorted(world.files()) == ["a.jpg"]


def test_a_library_that_follows_symlinks_is_scanned_whole(tmp_path: Path) -> None:
    world = World(tmp_path, [{"name": "photos", "follow_symlinks": True}])
    try:
        world.write("real/a.jpg", 1)
        world.scan()
        os.symlink("real", world.root() / "alias")
        world.write("other.jpg", 2)
        result = world.scan_paths(subtrees=["alias"], after=1)
        # the whole root was walked: the link's file and one the watcher did not name
        assert sorted(world.files()) == ["alias/a.jpg", "other.jpg", "real/a.jpg"]
        assert result.seen == 3
    finally:
        world.close()


# -- a file still being written is reported, not waited for (docs/rules.md, Settle) -------


def test_a_file_still_being_written_is_left_unread_for_the_watcher(tmp_path: Path) -> None:
    world = World(tmp_path, settle=3600.0)  # a wait would hang the test: none happens
    try:
        world.write("fresh.jpg", 1)
        result = world.scan_paths(files=["fresh.jpg"])
        assert (result.settling, result.settling_paths, result.hashed) == (1, ["fresh.jpg"], 0)
        assert world.files() == {}
        # once its mtime is settle seconds old, the path handed back is read
        result = world.scan_paths(files=result.settling_paths, after=3600)
        assert (result.new, result.settling) == (1, 0)
        assert world.sync() == [Call("add", "fresh.jpg", "similar")]
    finally:
        world.close()


def test_a_file_dated_in_the_future_is_read_at_once(tmp_path: Path) -> None:
    world = World(tmp_path, settle=3600.0)
    try:
        path = world.write("camera.jpg", 1)
        ahead = world.clock + 86400  # copied with the mtime of a camera a day ahead
        os.utime(path, (ahead, ahead))
        result = world.scan_paths(files=["camera.jpg"])
        assert (result.new, result.settling) == (1, 0)
    finally:
        world.close()


def test_a_full_rescan_look_scans_the_whole_library_and_waits_for_no_writer(
    tmp_path: Path,
) -> None:
    world = World(tmp_path, settle=3600.0)
    try:
        old = world.write("old.jpg", 1)
        two_hours_ago = world.clock - 7200
        os.utime(old, (two_hours_ago, two_hours_ago))
        world.write("sub/fresh.jpg", 2)
        look = LookAgain("photos", full_rescan=True)
        lib = scan_paths(world.ledger, world.config, [look], now=world.clock).libraries[0]
        assert (lib.seen, lib.new, lib.settling_paths) == (2, 2, ["sub/fresh.jpg"])
        assert sorted(world.files()) == ["old.jpg"]
    finally:
        world.close()


# -- a move costs no re-read (docs/rules.md, One update per rename) -----------------------


def test_a_renamed_file_is_not_read_again_by_a_full_scan(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("b.jpg", 2)
    world.scan()
    world.sync()
    known = world.files()["a.jpg"].content_hash
    world.move("a.jpg", "sub/renamed.jpg")
    lib = world.scan(after=1).libraries[0]
    assert (lib.new, lib.vanished, lib.hashed, lib.reused) == (1, 1, 0, 1)
    assert world.files()["sub/renamed.jpg"].content_hash == known
    assert world.sync() == [Call("update", "sub/renamed.jpg", "similar")]


def test_a_moved_folder_is_not_read_again_by_a_targeted_scan(tmp_path: Path) -> None:
    world = synced_world(tmp_path, [f"shoes/{n}.jpg" for n in range(5)] + ["keep.jpg"])
    try:
        (world.root() / "shoes").rename(world.root() / "boots")
        result = world.scan_paths(subtrees=["boots"], vanished=["shoes"], after=1)
        assert (result.new, result.vanished, result.hashed, result.reused) == (5, 5, 0, 5)
        calls = sorted(world.sync(), key=lambda c: c.path)
        assert calls == [Call("update", f"boots/{n}.jpg", "similar") for n in range(5)]
        assert_a_full_scan_agrees(world)
    finally:
        world.close()


def test_a_move_seen_in_two_batches_is_not_read_again(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("b.jpg", 2)
    world.scan()
    world.sync()
    world.move("a.jpg", "c.jpg")
    assert world.scan_paths(vanished=["a.jpg"], after=1).vanished == 1
    result = world.scan_paths(files=["c.jpg"])
    assert (result.new, result.hashed, result.reused) == (1, 0, 1)
    assert world.sync() == [Call("update", "c.jpg", "similar")]


def test_a_move_the_watcher_saw_is_one_update_and_no_read(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("b.jpg", 2)
    world.scan()
    world.sync()
    world.move("a.jpg", "c.jpg")
    # the watcher hands over a move as its source and its destination
    result = world.scan_paths(files=["c.jpg"], vanished=["a.jpg"], after=1)
    assert (result.new, result.vanished, result.hashed, result.reused) == (1, 1, 0, 1)
    assert world.sync() == [Call("update", "c.jpg", "similar")]
    assert_a_full_scan_agrees(world)


def test_a_copy_with_the_same_size_and_mtime_is_read(world: World) -> None:
    world.write("a.jpg", 1)
    world.scan()
    world.sync()
    shutil.copy2(world.root() / "a.jpg", world.root() / "copy.jpg")  # another inode
    world.remove("a.jpg")
    lib = world.scan(after=1).libraries[0]
    assert (lib.new, lib.vanished, lib.hashed, lib.reused) == (1, 1, 1, 0)
    assert world.sync() == [Call("update", "copy.jpg", "similar")]


def test_a_moved_file_that_was_rewritten_in_place_is_read(world: World) -> None:
    path = world.write("a.jpg", 1)
    world.scan()
    world.sync()
    world.write("a.jpg", 2)  # same inode, new bytes and mtime
    assert path.stat().st_ino == os.stat(world.root() / "a.jpg").st_ino
    world.move("a.jpg", "b.jpg")
    lib = world.scan(after=1).libraries[0]
    assert (lib.new, lib.hashed, lib.reused) == (1, 1, 0)
    assert world.sync() == [Call("add", "b.jpg", "similar")]  # the old one waits for grace


# a fresh interpreter opens the ledger, gives up root (root ignores modes), scans some paths
_SCAN_PATHS_AS_NOBODY = """
import json, os, sys
import concurrent.futures, sqlalchemy.dialects.sqlite.pysqlite
import syncd.scan.hashing, syncd.scan.prepare
from syncd.config import load_config
from syncd.ledger.schema import open_ledger
from syncd.paths.handoff import LookAgain
from syncd.scan.scanner import scan_paths
config = load_config(sys.argv[1])
ledger = open_ledger(config.ledger.path)
os.setgroups([]); os.setgid(65534); os.setuid(65534)
for look in [
    LookAgain("photos", ("locked/b.jpg", "locked/deeper", "gone.jpg")),
    LookAgain("photos", ("locked",)),
]:
    lib = scan_paths(ledger, config, [look]).libraries[0]
    print(json.dumps([lib.vanished, lib.unknown, lib.unreadable]))
"""


def test_an_unreadable_folder_vanishes_nothing_below_it(shared_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    world = synced_world(shared_dir, ["open/a.jpg", "locked/b.jpg", "locked/deeper/c.jpg"])
    world.close()
    for dirpath, _, filenames in os.walk(shared_dir):
        for name in [dirpath, *(os.path.join(dirpath, f) for f in filenames)]:
            os.chown(name, 65534, 65534)
    (world.root() / "locked").chmod(0)
    done = subprocess.run(
        [sys.executable, "-c", _SCAN_PATHS_AS_NOBODY, str(world.config_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    (world.root() / "locked").chmod(0o755)
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("running as root without the right to switch users")
    assert done.returncode == 0, done.stderr
    # (vanished, unknown, unreadable): each path under the locked folder, then the folder
    assert [json.loads(line) for line in done.stdout.splitlines()] == [[0, 2, 2], [0, 2, 1]]
    world.ledger = open_ledger(world.config.ledger.path)
    try:
        assert {row.state for row in world.files().values()} == {"live"}
    finally:
        world.close()
