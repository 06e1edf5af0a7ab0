"""``syncd reconcile`` run as users run it: the installed command, in a process of its own.

Only a fresh process walks its libraries in a child process while it starts up;
these tests check that it reports what a walk in-process finds, and that a reconcile with
nothing to sync reaches no gallery yet keeps its exit codes (README, Commands).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from devkit.imagegen import make_image
from syncd.cli import cli
from syncd.ledger.schema import open_ledger
from syncd.ledger.settings import PAUSE_KEY, put_setting
from syncd.pauses import AccountPause

SYNCD = str(Path(sys.executable).with_name("syncd"))


def write_config(base: Path, root: str = "./photos") -> Path:
    config = base / "config.toml"
    config.write_text(
        '[api]\nendpoint = "embedded"\n[ledger]\npath = "./state/ledger.db"\n'
        "[watch]\nsettle = 0.0\ndelete_grace = 0.0\n"
        f'[[library]]\nname = "photos"\nroot = "{root}"\ngallery = "same_hq"\n',
        encoding="utf-8",
    )
    return config


def syncd(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``syncd`` command, stdout and stderr captured (neither a terminal)."""
    return subprocess.run([SYNCD, *args], capture_output=True, text=True, timeout=120, check=False)


def picture(root: Path, relpath: str, seed: int) -> None:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_image(seed, size=(32, 32)))


@contextmanager
def a_thread_running() -> Iterator[None]:
    """A thread runs meanwhile: this process then walks its libraries itself."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_a_reconcile_process_reports_the_changes_a_walk_in_process_finds(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for n, name in enumerate(("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg")):
        picture(photos, name, n)
    config = write_config(tmp_path)
    first = syncd("reconcile", "-c", str(config))
    assert first.returncode == 0, first.stderr
    assert "5 added" in first.stdout
    picture(photos, "b.jpg", 10)  # changed
    (photos / "c.jpg").unlink()  # vanished
    (photos / "sub").mkdir()
    (photos / "d.jpg").rename(photos / "sub" / "g.jpg")  # moved
    picture(photos, "f.jpg", 11)  # new
    (photos / "broken.jpg").write_bytes(b"not a picture")
    # a second installation over the same tree, at the same point
    other = tmp_path / "other"
    other.mkdir()
    shutil.copytree(tmp_path / "state", other / "state")
    other_config = write_config(other, root="../photos")

    ahead = syncd("-v", "reconcile", "--dry-run", "-c", str(config))
    with a_thread_running():
        here = CliRunner().invoke(cli, ["reconcile", "--dry-run", "-c", str(other_config)])

    assert ahead.returncode == 0, ahead.stderr
    assert "walking 1 libraries in child process" in ahead.stderr
    assert here.exit_code == 0, here.output
    assert ahead.stdout == here.stdout
    lines = ahead.stdout.splitlines()
    assert lines[0] == (
        "library photos (same_hq): 6 files: 4 new or changed, 2 unchanged, 2 vanished"
    )
    assert "  photos/broken.jpg: not an image (cannot identify image file)" in lines


def test_a_reconcile_with_nothing_to_sync_starts_no_gallery(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "notes.txt").write_text("not a library file")
    config = write_config(tmp_path)

    idle = syncd("reconcile", "-c", str(config))

    assert idle.returncode == 0, idle.stderr
    assert idle.stdout.splitlines() == [
        "library photos (same_hq): 0 files: 0 new or changed, 0 unchanged, 0 vanished",
        "synced: 0 added, 0 adopted, 0 updated, 0 deleted; 0 API calls",
    ]
    gallery_data = tmp_path / "state" / "gallery"
    assert not gallery_data.exists(), "the embedded gallery was started for nothing"
    picture(photos, "a.jpg", 1)
    work = syncd("reconcile", "-c", str(config))
    assert work.returncode == 0, work.stderr
    assert "synced: 1 added" in work.stdout
    assert gallery_data.is_dir()
    again = syncd("reconcile", "-c", str(config))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1:] == [
        "synced: 0 added, 0 adopted, 0 updated, 0 deleted; 0 API calls"
    ]


def test_a_quota_pause_still_exits_3_when_nothing_is_due(tmp_path: Path) -> None:
    picture(tmp_path / "photos", "a.jpg", 1)
    config = write_config(tmp_path)
    assert syncd("reconcile", "-c", str(config)).returncode == 0
    now = datetime.now(UTC)
    pause = AccountPause(17, "daily", now, now + timedelta(hours=2))
    ledger = open_ledger(tmp_path / "state" / "ledger.db")
    try:
        with ledger.transaction() as session:
            put_setting(session, PAUSE_KEY, pause.to_json(), time.time())
    finally:
        ledger.close()

    paused = syncd("reconcile", "-c", str(config))

    assert paused.returncode == 3
    assert paused.stderr.splitlines()[-1] == pause.describe()
    assert "0 API calls" in paused.stdout
