"""`syncd run` on a share that comes and goes: a real tmpfs mounted inside a library's root,
filled, unmounted and mounted again three times while files elsewhere keep changing.

What it holds: a file syncd cannot see is not a deleted file. While the share is away its
items stay in the gallery; when it comes back with the same files nothing is sent for them;
what really changed on it meanwhile (files deleted or added while mounted) is followed; and
at the end the gallery holds exactly what the disk holds.

Mounting needs root (CI runs the suite as root); elsewhere the test says why it is skipped.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Daemon, calls, gallery_paths, write_image

pytestmark = pytest.mark.slow

#: seconds the share stays away in each round: longer than the delete grace and a settle,
#: so a delete would have gone out if syncd took the unmounted files for deleted ones
AWAY = 4.0


def _mount(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)], check=True)


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=True)


def _is_mount(path: Path) -> bool:
    return path.is_dir() and os.path.ismount(path)


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Path]:
    """A directory where a tmpfs can be mounted, unmounted at the end whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")
    probe = tmp_path / "probe"
    try:
        _mount(probe)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"this machine cannot mount a tmpfs ({exc})")
    _unmount(probe)
    path = tmp_path / "photos" / "share"
    try:
        yield path
    finally:
        while _is_mount(path):
            _unmount(path)


def _share_files(round_no: int) -> dict[str, int]:
    """relative path -> image seed of what the share holds in round ``round_no``: a fixed
    core that every round brings back, and a few files only this round has."""
    files = {f"share/core/{i:02d}.jpg": 100 + i for i in range(8)}
    files |= {f"share/round{round_no}/{i}.jpg": 1000 * (round_no + 1) + i for i in range(3)}
    return files


def test_a_share_unmounted_and_remounted_under_churn_loses_no_item(
    daemon: Daemon, share: Path
) -> None:
    root = daemon.libraries[0].root
    # the library's own files, on the root's filesystem: they keep changing throughout
    local = {f"local/{i}.jpg": 500 + i for i in range(6)}
    for rel, seed in local.items():
        write_image(root / rel, seed)
    _mount(share)
    daemon.start()
    expected_share: dict[str, int] = {}
    churn_seed = 9000
    for round_no in range(3):
        if not _is_mount(share):
            _mount(share)
        # the share comes back with what it held (written anew: new inodes, new mtimes) ...
        for rel, seed in expected_share.items():
            write_image(root / rel, seed)
        # ... and this round's churn on it: one core file deleted for real, new files added
        if round_no:
            gone = f"share/core/{round_no:02d}.jpg"
            (root / gone).unlink()
            expected_share.pop(gone)
        for rel, seed in _share_files(round_no).items():
            if rel.startswith("share/core/") and round_no and rel not in expected_share:
                continue  # deleted for real in an earlier round
            if rel not in expected_share:
                write_image(root / rel, seed)
                expected_share[rel] = seed
        want = {f"photos/{rel}" for rel in (*local, *expected_share)}
        daemon.wait_until(
            lambda want=want: set(gallery_paths(daemon.server)) == want,  # type: ignore[misc]
            what=f"round {round_no}: the gallery to hold the disk's files",
        )
        deletes_before = calls(daemon.server).get("delete", 0)
        held = gallery_paths(daemon.server)

        _unmount(share)
        # churn elsewhere while the share is away: a file added, a file deleted
        churn_seed += 1
        new_local = f"local/new{round_no}.jpg"
        write_image(root / new_local, churn_seed)
        local[new_local] = churn_seed
        old_local = sorted(local)[0]
        (root / old_local).unlink()
        local.pop(old_local)
        want_away = {f"photos/{rel}" for rel in (*local, *expected_share)}
        daemon.wait_until(
            lambda want=want_away: set(gallery_paths(daemon.server)) == want,  # type: ignore[misc]
            what=f"round {round_no}: the churn beside the unmounted share to be synced",
        )
        # the share's items outlive a delete grace and a settle, and more
        time.sleep(AWAY)
        now = gallery_paths(daemon.server)
        for rel in expected_share:
            key = f"photos/{rel}"
            assert now.get(key) == held[key], (
                f"round {round_no}: {key} left the gallery while its share was only unmounted\n"
                + daemon.log()
            )
        # exactly one delete went out while away: the local file deleted for real
        assert calls(daemon.server).get("delete", 0) - deletes_before <= 1, daemon.log()

    # the share comes back for good, unchanged: nothing is sent for it
    _mount(share)
    before = calls(daemon.server)
    for rel, seed in expected_share.items():
        write_image(root / rel, seed)
    want = {f"photos/{rel}" for rel in (*local, *expected_share)}
    time.sleep(AWAY)
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == want, what="the final state")
    after = calls(daemon.server)
    assert after == before, f"the share's return sent calls: {before} -> {after}\n{daemon.log()}"
    assert "Traceback" not in daemon.log()
    assert daemon.stop() == 0
