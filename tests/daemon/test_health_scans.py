"""Health says what the last scan could not see: a share mounted inside a library's root
that dropped, and folders that cannot be read. Their files are kept (no delete goes out),
and /healthz, `status` and `status --json` name the cause with the count of files kept.
A real `syncd run` over real HTTP, a real tmpfs mount.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.health import scan_reasons
from syncd.ledger.conditions import LibraryConditions, RootCondition, UnreadableFolder

from .conftest import Daemon, calls, free_port, gallery_paths, tmpfs_at, write_image
from .test_health import codes, status_text


@pytest.fixture
def inner_share(daemon: Daemon) -> Iterator[Path]:
    """``photos/archive``: a tmpfs mounted inside the library's root (unmounted at the end)."""
    with tmpfs_at(daemon.libraries[0].root / "archive") as share:
        yield share


def test_a_dropped_inner_share_keeps_its_items_and_answers_503_naming_it(
    daemon: Daemon, inner_share: Path
) -> None:
    daemon.metrics_listen = f"127.0.0.1:{free_port()}"
    root = daemon.libraries[0].root
    for i in range(3):
        write_image(root / f"local{i}.jpg", 70 + i)
    for i in range(4):
        write_image(inner_share / f"old{i}.jpg", 80 + i)
    daemon.start()
    daemon.wait_until(lambda: len(gallery_paths(daemon.server)) == 7, what="7 items")
    daemon.wait_until(lambda: daemon.healthz()[0] == 200, what="a healthy start")

    subprocess.run(["umount", "-l", str(inner_share)], check=True)
    daemon.wait_until(lambda: daemon.healthz()[0] == 503, what="/healthz names the share")
    body = daemon.healthz()[1]
    assert "mount point archive" in body and "its 4 files are kept" in body, body
    assert ("mount_missing", False) in codes(daemon.status_json())
    assert "its 4 files are kept" in status_text(daemon)
    assert len(gallery_paths(daemon.server)) == 7
    assert calls(daemon.server).get("delete", 0) == 0
    assert daemon.stop() == 0


def test_unreadable_folders_and_another_filesystem_are_health_reasons_with_counts() -> None:
    found = LibraryConditions(
        "photos",
        root_device=os.makedev(8, 1),
        unreadable=(
            UnreadableFolder("a/b", "permission denied", 5),
            UnreadableFolder("c", "stale file handle", 1),
        ),
    )
    (reason,) = scan_reasons(found)
    assert reason.code == "folders_unreadable"
    assert reason.detail == (
        "2 folders could not be read (a/b cannot be read (permission denied); "
        "c cannot be read (stale file handle)): its 6 files are kept"
    )
    moved = LibraryConditions(
        "photos",
        root=RootCondition("device_changed", "root is on another filesystem", 8, 1, 2),
    )
    assert [(r.code, r.detail) for r in scan_reasons(moved)] == [
        ("root_elsewhere", "root is on another filesystem: its 8 files are kept")
    ]
    # a root missing or empty is told by the live look at the root, not by an older scan
    empty = LibraryConditions("photos", root=RootCondition("empty", "root is empty", 8))
    assert scan_reasons(empty) == []
    assert scan_reasons(LibraryConditions("photos")) == []
