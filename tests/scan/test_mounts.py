"""Unknown is not gone: a mount point that drops inside a root, a root whose share was
unmounted, a folder that cannot be read. Nothing is deleted for files syncd cannot see, the
state says why, and when the files come back nothing is sent.

Real tmpfs mounts (the suite runs as root in CI; skipped with the reason otherwise), the
real ``syncd reconcile`` and the real local gallery over loopback (``tests/e2e/site.py``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.site import Site
from ledger.world import World
from ledgers import LedgerChoice

from syncd.config import LibraryConfig, WatchConfig, load_config
from syncd.gallery.server import GalleryServer
from syncd.ledger.conditions import conditions_by_library
from syncd.ledger.schema import open_ledger
from syncd.paths.filters import WalkFilter
from syncd.scan.ahead import start_walks
from syncd.scan.walk import FileBatch, FileEntry, MountPoint, walk_batches, walk_library


class Mounts:
    """tmpfs mounts a test makes; whatever is still mounted goes when the test ends."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def mount(self, path: Path) -> int:
        """Mount a fresh, empty tmpfs at ``path`` (made if missing); its device number."""
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        self.points.append(path)
        return path.stat().st_dev

    def unmount(self, path: Path) -> None:
        subprocess.run(["umount", str(path)], check=True)
        self.points.remove(path)


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")
    made = Mounts()
    try:
        yield made
    finally:
        for path in reversed(made.points):
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _status(site: Site) -> dict[str, object]:
    result = site.syncd("status", "--json")
    assert result.code == 0, result
    conditions = json.loads(result.out)["conditions"]["photos"]
    assert isinstance(conditions, dict)
    return conditions


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- the walk --------------------------------------------------------------------------------


def test_the_walk_names_each_mount_point_before_what_it_holds(
    tmp_path: Path, mounts: Mounts
) -> None:
    (tmp_path / "a.jpg").write_bytes(b"a")
    dev = mounts.mount(tmp_path / "archive")
    (tmp_path / "archive" / "deeper").mkdir()
    (tmp_path / "archive" / "deeper" / "b.jpg").write_bytes(b"b")
    flt = WalkFilter.for_library(LibraryConfig("l", tmp_path, "same_hq"), WatchConfig())

    walked = list(walk_library(tmp_path, flt))
    assert MountPoint("archive", dev) in walked
    assert walked.index(MountPoint("archive", dev)) < walked.index(
        next(e for e in walked if isinstance(e, FileEntry) and e.relpath.startswith("archive/"))
    )
    assert [e for e in walked if isinstance(e, MountPoint)] == [MountPoint("archive", dev)]
    batched = [e for e in walk_batches(tmp_path, flt) if not isinstance(e, FileBatch)]
    assert batched == [MountPoint("archive", dev)]


def test_a_walk_ahead_in_a_child_hands_over_the_mount_points(
    tmp_path: Path, mounts: Mounts
) -> None:
    world = World(tmp_path)
    try:
        world.write("a.jpg", 1)
        dev = mounts.mount(world.root() / "archive")
        world.write("archive/b.jpg", 2)
        with start_walks(world.config) as walks:
            if not walks.started:
                pytest.skip("this process cannot fork a walking child (threads run)")
            walk = walks.take(world.config.libraries[0], world.config.watch)
            assert walk is not None
            assert [item for item in walk if isinstance(item, MountPoint)] == [
                MountPoint("archive", dev)
            ]
    finally:
        world.close()


# -- a mount point inside a root ------------------------------------------------------------


def _archive_site(
    tmp_path: Path, server: GalleryServer, choice: LedgerChoice, mounts: Mounts
) -> tuple[Site, dict[str, bytes]]:
    """40 photos, 10 of them on a tmpfs mounted at archive2019, all synced."""
    site = Site(tmp_path, server, ledger=choice, max_delete_fraction=0.25)
    for n in range(30):
        site.write(f"trips/{n}.jpg", n)
    mounts.mount(site.root / "archive2019")
    for n in range(30, 40):
        site.write(f"archive2019/{n}.jpg", n)
    saved = {p.name: p.read_bytes() for p in (site.root / "archive2019").iterdir()}
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"add": 40}
    site.server.reset_counts()
    return site, saved


def test_a_mount_that_drops_inside_a_root_deletes_nothing_and_costs_nothing_when_back(
    tmp_path: Path,
    gallery_server: GalleryServer,
    ledger_choice: LedgerChoice,
    mounts: Mounts,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site, saved = _archive_site(tmp_path, gallery_server, ledger_choice, mounts)
    old = site.root.joinpath("archive2019").stat().st_dev
    mounts.unmount(site.root / "archive2019")  # 10 of 40: not more than max_delete_fraction

    with caplog.at_level(logging.WARNING, logger="syncd"):
        result = site.syncd("reconcile")
    assert result.code == 0, result
    assert site.calls() == {}
    assert len(site.items()) == 40
    device = f"{os.major(old)}:{os.minor(old)}"
    assert _warnings(caplog) == [
        f"library photos: mount point archive2019 (device {device}) is not mounted: its 10 "
        "files are kept, not deleted (if it is gone for good, `syncd reconcile "
        "--allow-mass-delete` lets their items go)"
    ]
    conditions = _status(site)
    assert conditions["missing_mounts"] == [
        {"path": "archive2019", "device": old, "kind": "not_mounted", "files": 10}
    ]
    assert conditions["reasons"] == [
        f"mount point archive2019 (device {device}) is not mounted: its 10 files are kept"
    ]
    assert site.syncd("reconcile").code == 0  # and again: still nothing
    assert site.calls() == {}

    # back: a fresh tmpfs (another device number, other inodes) with the same photos
    mounts.mount(site.root / "archive2019")
    for name, data in saved.items():
        (site.root / "archive2019" / name).write_bytes(data)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="syncd"):
        assert site.syncd("reconcile").code == 0
    assert site.calls() == {}
    assert _warnings(caplog) == []
    conditions = _status(site)
    assert conditions["clear"] is True
    assert [path for path, _ in conditions["mounts"]] == ["archive2019"]  # type: ignore[attr-defined]
    site.assert_mirrors_disk()


def test_a_mount_point_holding_none_of_its_files_deletes_nothing(
    tmp_path: Path,
    gallery_server: GalleryServer,
    ledger_choice: LedgerChoice,
    mounts: Mounts,
) -> None:
    site, _ = _archive_site(tmp_path, gallery_server, ledger_choice, mounts)
    mounts.unmount(site.root / "archive2019")
    mounts.mount(site.root / "archive2019")  # mounted, but empty (a share not connected yet)
    result = site.syncd("reconcile")
    assert result.code == 0, result
    assert site.calls() == {}
    conditions = _status(site)
    assert conditions["reasons"] == [
        "mount point archive2019 holds none of its files (is its share mounted?): its 10 "
        "files are kept"
    ]


def test_allow_mass_delete_lets_a_mount_point_that_is_gone_for_good_go(
    tmp_path: Path,
    gallery_server: GalleryServer,
    ledger_choice: LedgerChoice,
    mounts: Mounts,
) -> None:
    site, _ = _archive_site(tmp_path, gallery_server, ledger_choice, mounts)
    mounts.unmount(site.root / "archive2019")
    (site.root / "archive2019").rmdir()
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {}
    assert "is gone" in _status(site)["reasons"][0]  # type: ignore[index]
    assert site.syncd("reconcile", "--allow-mass-delete").code == 0
    assert site.calls() == {"delete": 1}  # one call for the 10 items
    assert _status(site)["clear"] is True
    site.assert_mirrors_disk()


def test_the_watchers_scan_of_paths_under_a_dropped_mount_deletes_nothing(
    tmp_path: Path, mounts: Mounts
) -> None:
    world = World(tmp_path, delete_grace=0.0)
    try:
        world.write("a.jpg", 1)
        mounts.mount(world.root() / "archive")
        saved = {}
        for n in range(2, 6):
            saved[f"archive/{n}.jpg"] = world.write(f"archive/{n}.jpg", n).read_bytes()
        world.scan()
        assert len(world.sync()) == 5
        mounts.unmount(world.root() / "archive")
        # what the watcher hands over when the folder's contents went away
        looked = world.scan_paths(subtrees=["archive"], vanished=["archive/2.jpg"])
        assert looked.vanished == 0
        assert looked.unknown == 4
        assert world.sync() == []
        assert {p: f.state for p, f in world.files().items()} == dict.fromkeys(
            ["a.jpg", *saved], "live"
        )
        mounts.mount(world.root() / "archive")
        for relpath, data in saved.items():
            (world.root() / relpath).write_bytes(data)
        world.scan_paths(subtrees=["archive"])
        assert world.sync() == []
    finally:
        world.close()


# -- a root that is a mount point ---------------------------------------------------------------


def test_an_unmounted_share_with_a_stray_file_beneath_deletes_nothing(
    tmp_path: Path,
    gallery_server: GalleryServer,
    ledger_choice: LedgerChoice,
    mounts: Mounts,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = Site(tmp_path, gallery_server, ledger=ledger_choice, max_delete_fraction=0.25)
    share = mounts.mount(site.root)
    photos = {f"{n}.jpg": site.write(f"{n}.jpg", n).read_bytes() for n in range(8)}
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"add": 8}
    site.server.reset_counts()

    mounts.unmount(site.root)
    beneath = site.root.stat().st_dev
    site.write("stray.jpg", 99)  # written into the folder the share was mounted on
    with caplog.at_level(logging.WARNING, logger="syncd"):
        result = site.syncd("reconcile")
    assert result.code == 0, result
    assert "delete" not in site.calls()  # 8 of 8 gone, fewer than 10: once all deleted
    assert site.calls() == {"add": 1}  # the stray file is a file of the folder as it is
    assert len(site.items()) == 9
    said = (
        f"library root {site.root} is on another filesystem than at the last scan (device "
        f"{os.major(beneath)}:{os.minor(beneath)}, was {os.major(share)}:{os.minor(share)}) "
        "and 8 of its 8 files are missing (is its share mounted?)"
    )
    assert _warnings(caplog) == [
        f"library photos: {said}: its 8 files are kept, nothing is deleted"
    ]
    assert f"library photos (same_hq): {said}: nothing will be deleted" in result.out
    conditions = _status(site)
    assert conditions["root"] == {
        "kind": "device_changed",
        "reason": said,
        "files": 8,
        "was": share,
        "now": beneath,
    }

    # the share back (a fresh tmpfs, another device number): the stray file is hidden again
    site.server.reset_counts()
    mounts.mount(site.root)
    for name, data in photos.items():
        (site.root / name).write_bytes(data)
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"delete": 1}  # only the stray file's item
    assert _status(site)["clear"] is True
    site.assert_mirrors_disk()


def test_a_remount_that_numbers_the_root_anew_costs_nothing(
    tmp_path: Path, gallery_server: GalleryServer, mounts: Mounts
) -> None:
    site = Site(tmp_path, gallery_server)
    mounts.mount(site.root)
    photos = {f"{n}.jpg": site.write(f"{n}.jpg", n).read_bytes() for n in range(3)}
    assert site.syncd("reconcile").code == 0
    site.server.reset_counts()
    mounts.unmount(site.root)
    mounts.mount(site.root)
    for name, data in photos.items():
        (site.root / name).write_bytes(data)
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {}
    assert _status(site)["clear"] is True


# -- folders that cannot be read ------------------------------------------------------------

# a fresh interpreter imports syncd, gives up root, then runs the command (root ignores modes)
_DRY_RUN_AS_NOBODY = """
import concurrent.futures, difflib, json, os, sqlite3, sys
import sqlalchemy.dialects.sqlite.pysqlite
import syncd.cli, syncd.scan.scanner, syncd.ledger.report, syncd.scan.hashing, syncd.scan.prepare
os.setgroups([]); os.setgid(65534); os.setuid(65534)
syncd.cli.cli(["reconcile", "--dry-run", "-c", sys.argv[1]], standalone_mode=False)
"""


def test_unreadable_folders_keep_their_files_and_say_so_once(shared_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    world = World(shared_dir, delete_grace=0.0)
    try:
        world.write("open/a.jpg", 1)
        world.write("locked/b.jpg", 2)
        world.write("locked/deeper/c.jpg", 3)
        world.write("private/d.jpg", 4)
        world.scan()
        world.sync()
    finally:
        world.close()
    for dirpath, _, filenames in os.walk(shared_dir):
        for name in [dirpath, *(os.path.join(dirpath, f) for f in filenames)]:
            os.chown(name, 65534, 65534)
    for folder in ("locked", "private"):
        (world.root() / folder).chmod(0)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _DRY_RUN_AS_NOBODY, str(world.config_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        for folder in ("locked", "private"):
            (world.root() / folder).chmod(0o755)
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("running as root without the right to switch users")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].endswith(
        "library photos: 2 folders could not be read (permission denied: locked, private); "
        "their 3 known files are kept"
    )
    assert "0 vanished" in done.stdout
    ledger = open_ledger(load_config(world.config_path).ledger)
    try:
        again = World.__new__(World)
        again.__dict__.update(world.__dict__)
        again.ledger = ledger
        assert {p: f.state for p, f in again.files().items()} == dict.fromkeys(
            ["open/a.jpg", "locked/b.jpg", "locked/deeper/c.jpg", "private/d.jpg"], "live"
        )
        assert again.sync() == []
        with ledger.transaction() as session:
            # a dry run says what it could not read, and stores no conditions for it
            assert conditions_by_library(session)["photos"].reasons() == []
    finally:
        ledger.close()
