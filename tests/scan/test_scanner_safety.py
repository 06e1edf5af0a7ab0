"""Mass deletes (docs/rules.md): a root that is missing, not a folder or empty sends no
deletes; a scan that vanishes more than max_delete_fraction of a library, and at least ten
files, holds its deletes until released."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ledger.world import Call, World

from syncd.ledger.report import ledger_status
from syncd.ledger.schema import open_ledger


def _world_with_files(tmp_path: Path, count: int, **config: float) -> World:
    world = World(tmp_path, **config)  # type: ignore[arg-type]
    for n in range(count):
        world.write(f"dir/{n}.jpg", n)
    world.scan()
    world.sync()
    return world


def test_a_missing_root_sends_no_deletes(tmp_path: Path) -> None:
    world = _world_with_files(tmp_path, 3)
    try:
        shutil.rmtree(world.root())
        result = world.scan(after=100)
        assert "does not exist" in (result.libraries[0].unavailable or "")
        world.scan(after=100)
        assert world.sync() == []
        assert len(world.gallery()) == 3
        assert len(world.files()) == 3
    finally:
        world.close()


def test_a_root_that_is_a_file_sends_no_deletes(tmp_path: Path) -> None:
    world = _world_with_files(tmp_path, 2)
    try:
        shutil.rmtree(world.root())
        world.root().write_bytes(b"not a folder")
        result = world.scan(after=100)
        assert result.libraries[0].unavailable
        assert world.sync() == []
    finally:
        world.close()


def test_an_empty_root_sends_no_deletes(tmp_path: Path) -> None:
    world = _world_with_files(tmp_path, 3)
    try:
        shutil.rmtree(world.root() / "dir")
        result = world.scan(after=100)
        assert "empty" in (result.libraries[0].unavailable or "")
        world.scan(after=100)
        assert world.sync() == []
        assert len(world.gallery()) == 3
    finally:
        world.close()


def test_a_mass_vanish_holds_its_deletes_until_allowed(tmp_path: Path) -> None:
    world = _world_with_files(tmp_path, 40, max_delete_fraction=0.25)
    try:
        for n in range(12):  # 12 of 40 > 25 %, and at least MASS_VANISH_FLOOR
            world.remove(f"dir/{n}.jpg")
        result = world.scan(after=1)
        assert result.libraries[0].held == 12
        world.scan(after=100)  # long past delete_grace: still held
        assert world.sync() == []
        with world.ledger.transaction() as session:
            status = ledger_status(session, [("photos", "similar")], world.clock)
        assert status.libraries[0].held_deletes == 12
        assert status.libraries[0].files == 28
        world.scan(after=1, allow_mass_delete=True)
        assert sorted(c.path for c in world.sync()) == sorted(f"dir/{n}.jpg" for n in range(12))
        assert {c.op for c in world.sync()} == set()
    finally:
        world.close()


def test_a_vanish_of_no_more_than_the_fraction_is_not_held(tmp_path: Path) -> None:
    world = _world_with_files(tmp_path, 40, max_delete_fraction=0.25, delete_grace=5.0)
    try:
        for n in range(10):  # 10 of 40 = 25 %: not more than the fraction
            world.remove(f"dir/{n}.jpg")
        assert world.scan(after=1).libraries[0].held == 0
        world.scan(after=6)
        assert [c.op for c in world.sync()] == ["delete"] * 10
    finally:
        world.close()


def test_deleting_one_of_two_files_is_not_held(tmp_path: Path) -> None:
    world = _world_with_files(tmp_path, 2, max_delete_fraction=0.25, delete_grace=5.0)
    try:
        world.remove("dir/0.jpg")  # half the library, but a single file
        assert world.scan(after=1).libraries[0].held == 0
        world.scan(after=6)
        assert world.sync() == [Call("delete", "dir/0.jpg", "similar")]
    finally:
        world.close()


@pytest.mark.parametrize(("files", "removed", "held"), [(12, 9, 0), (13, 10, 10)])
def test_only_a_vanish_of_at_least_ten_files_is_held(
    tmp_path: Path, files: int, removed: int, held: int
) -> None:
    world = _world_with_files(tmp_path, files, max_delete_fraction=0.25)
    try:
        for n in range(removed):  # far more than 25 % either way
            world.remove(f"dir/{n}.jpg")
        assert world.scan(after=1).libraries[0].held == held
        world.scan(after=100)
        assert len(world.sync()) == removed - held
    finally:
        world.close()


def test_held_files_that_come_back_send_nothing(tmp_path: Path) -> None:
    world = _world_with_files(tmp_path, 12, max_delete_fraction=0.25)
    try:
        saved = tmp_path / "saved"
        shutil.move(world.root() / "dir", saved)
        (world.root() / "dir").mkdir()
        world.write("dir/new.jpg", 99)  # not empty: a real vanish of 12 of 12
        assert world.scan(after=1).libraries[0].held == 12
        for path in saved.iterdir():
            shutil.move(path, world.root() / "dir" / path.name)
        world.scan(after=100)
        assert world.sync() == [Call("add", "dir/new.jpg", "similar")]
        assert len(world.gallery()) == 13
    finally:
        world.close()


def test_renaming_a_folder_is_not_a_mass_delete(tmp_path: Path) -> None:
    world = _world_with_files(tmp_path, 12, max_delete_fraction=0.25)
    try:
        (world.root() / "dir").rename(world.root() / "renamed")
        result = world.scan(after=1)
        assert result.libraries[0].held == 0
        calls = world.sync()
        assert sorted(calls, key=lambda c: c.path) == sorted(
            (Call("update", f"renamed/{n}.jpg", "similar") for n in range(12)),
            key=lambda c: c.path,
        )
    finally:
        world.close()


# a fresh interpreter imports syncd, gives up root, then runs the command (root ignores modes)
_DRY_RUN_AS_NOBODY = """
import concurrent.futures, difflib, json, os, sqlite3, sys
import sqlalchemy.dialects.sqlite.pysqlite
import syncd.cli, syncd.scan.scanner, syncd.ledger.report, syncd.scan.hashing, syncd.scan.prepare
os.setgroups([]); os.setgid(65534); os.setuid(65534)
syncd.cli.cli(["reconcile", "--dry-run", "-c", sys.argv[1]], standalone_mode=False)
"""


def test_an_unreadable_folder_sends_no_deletes_for_what_it_holds(shared_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    world = World(shared_dir, delete_grace=0.0)
    try:
        world.write("open/a.jpg", 1)
        world.write("locked/b.jpg", 2)
        world.write("locked/deeper/c.jpg", 3)
        world.scan()
        world.sync()
    finally:
        world.close()
    for dirpath, _, filenames in os.walk(shared_dir):
        for name in [dirpath, *(os.path.join(dirpath, f) for f in filenames)]:
            os.chown(name, 65534, 65534)
    (world.root() / "locked").chmod(0)
    done = subprocess.run(
        [sys.executable, "-c", _DRY_RUN_AS_NOBODY, str(world.config_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("running as root without the right to switch users")
    (world.root() / "locked").chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert "skipped locked: cannot open directory: permission denied" in done.stdout
    assert "0 vanished" in done.stdout
    again = World.__new__(World)
    again.__dict__.update(world.__dict__)
    again.ledger = open_ledger(world.config.ledger.path)
    try:
        assert {p: f.state for p, f in again.files().items()} == {
            "open/a.jpg": "live",
            "locked/b.jpg": "live",
            "locked/deeper/c.jpg": "live",
        }
        assert again.sync() == []
    finally:
        again.close()
