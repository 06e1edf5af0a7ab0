"""`kill -9` at any moment of a reconcile loses nothing (docs/rules.md, Nothing lost on a crash).

``syncd reconcile`` runs as its own process against the gallery server of this test and
is killed with SIGKILL at random moments, round after round, while files are renamed,
copied, added and deleted between rounds (a deleted file may be one whose add went out and
whose answer the kill lost); a last reconcile must leave exactly the gallery the disk
implies.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncd.gallery.server import GalleryServer

from .site import Site

SYNCD = str(Path(sys.executable).with_name("syncd"))
IMAGES = 1000
#: rounds that must end in a kill while the reconcile runs
KILLS = 10
MAX_ROUNDS = 40


def run_reconcile(site: Site, kill_after: float | None) -> int | None:
    """Run ``syncd reconcile`` as a process; SIGKILL it after ``kill_after`` seconds.

    Returns its exit code, or None when it was killed before it ended.
    """
    proc = subprocess.Popen(
        [SYNCD, "reconcile", "-c", str(site.config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=kill_after if kill_after is not None else 300)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
    return proc.returncode


def shuffle_some(site: Site, rng: random.Random, round_: int) -> None:
    """Rename files, copy some, delete some (newest first: likely in flight), add new ones."""
    files = sorted(p for p in site.root.rglob("*.jpg"))
    for path in rng.sample(files, 40):
        path.rename(path.with_name(f"r{round_}-{path.name}"))
    newest = sorted(site.root.rglob("new/*.jpg"))[-10:]
    for path in [*newest, *rng.sample(sorted(site.root.rglob("*.jpg")), 10)]:
        path.unlink(missing_ok=True)
    for path in rng.sample(sorted(p for p in site.root.rglob("*.jpg")), 10):
        shutil.copy(path, path.with_name(f"c{round_}-{path.name}"))
    for n in range(20):
        site.write(f"new/{round_}-{n}.jpg", 100_000 + round_ * 100 + n)


@pytest.mark.slow
def test_reconcile_killed_at_random_moments_converges_exactly(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    seed = int(os.environ.get("SYNCD_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    # answers take a little while, as over a network: kills land between call and record
    gallery_server.faults.latency = 0.01
    site = Site(tmp_path, gallery_server, concurrency=4)
    for n in range(IMAGES):
        site.write(f"d{n % 20}/{n}.jpg", n)
    killed = rounds = 0
    while killed < KILLS:
        rounds += 1
        assert rounds <= MAX_ROUNDS, f"seed {seed}: only {killed} kills landed mid-run"
        if rounds > 3:
            shuffle_some(site, rng, rounds)
        code = run_reconcile(site, kill_after=rng.uniform(0.3, 2.0))
        if code is None:
            killed += 1
        else:
            assert code == 0, f"seed {seed}: reconcile exited {code} in round {rounds}"
    assert run_reconcile(site, kill_after=None) == 0, f"seed {seed}"
    site.assert_mirrors_disk()
    gallery_server.reset_counts()
    assert run_reconcile(site, kill_after=None) == 0
    assert site.calls() == {}, f"seed {seed}: a converged tree still costs calls"
