"""A command with nothing to do starts fast: a no-op ``syncd reconcile`` (nothing changed
since the last one) and ``syncd status``, run as the real command in a process of their
own, load none of what syncing needs: no HTTP client, no image library, no sync engine, no
gallery, no file preparation (docs/architecture.md, The application layer; the time it
takes is measured by benchmarks/bench_start.py, never here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from e2e.site import Site

from syncd.gallery.server import GalleryServer

#: what only a reconcile with something to sync (or another command) may load
SYNCING = (
    "requests",
    "urllib3",
    "PIL",
    "numpy",
    "psycopg",
    "syncd.api.transport",
    "syncd.sync.engine",
    "syncd.gallery",
    "syncd.imaging",
    "syncd.scan.prepare",
    "syncd.scan.hashing",
    "syncd.watch",
    "syncd.console",
)
#: what a status, which only reads the ledger, never loads on top
SCANNING = ("syncd.scan", "syncd.plan", "syncd.sync.engine", "syncd.gates.pause")


def loaded_by(site: Site, *args: str) -> set[str]:
    """The modules the real ``syncd <args>`` imported, run in a process of its own (as
    ``python -X importtime`` lists them on stderr; a module imported by
    ``importlib.import_module``, as the CLI imports its use case, is missing from that list,
    but what it imports is in it)."""
    command = [sys.executable, "-X", "importtime", "-m", "syncd.cli", *args, "-c", str(site.config)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


def among(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules of ``modules`` that are one of ``names`` or inside one of them."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.fixture
def synced(tmp_path: Path, gallery_server: GalleryServer) -> Site:
    """A library of three pictures, synced by a real reconcile."""
    site = Site(tmp_path, gallery_server)
    for seed in range(3):
        site.write(f"album/{seed}.jpg", seed)
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"add": 3}
    gallery_server.reset_counts()
    return site


def test_a_reconcile_with_nothing_to_do_loads_nothing_to_sync_with(synced: Site) -> None:
    loaded = loaded_by(synced, "reconcile")
    assert "syncd.scan.scanner" in loaded  # the probe saw the reconcile's own imports
    assert among(loaded, SYNCING) == []
    assert synced.calls() == {}  # and it was a no-op indeed


def test_a_reconcile_with_something_to_sync_does_load_it(synced: Site) -> None:
    """The probe above sees these imports: a new picture brings the engine and the client."""
    synced.write("album/new.jpg", 99)
    loaded = loaded_by(synced, "reconcile")
    assert {"requests", "syncd.sync.engine", "syncd.scan.prepare"} <= set(among(loaded, SYNCING))


def test_status_loads_neither_the_sync_nor_the_scan(synced: Site) -> None:
    loaded = loaded_by(synced, "status")
    assert "syncd.ledger.report" in loaded  # the probe saw the status's own imports
    assert among(loaded, SYNCING + SCANNING) == []
