"""An add whose answer is lost leaves no stray item, even when its file goes too
(docs/rules.md, Nothing lost on a crash).

The gallery server adds each image and then drops the connection, as a crash or a network
cut at the worst moment would; ``syncd reconcile`` is killed with SIGKILL once the gallery
holds every image the ledger never heard of. Then some files are deleted, and the next
reconcile must leave exactly the gallery the disk implies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ledgers import LedgerChoice
from sqlalchemy import select

from syncd.gallery.server import GalleryServer
from syncd.ledger.models import Item

from .site import Site

SYNCD = str(Path(sys.executable).with_name("syncd"))
IMAGES = 12


def known_cont_signs(site: Site) -> set[str]:
    """The cont_signs the site's ledger holds."""
    ledger = site.open_ledger(create=False)
    try:
        with ledger.transaction() as session:
            return {sign for sign in session.scalars(select(Item.cont_sign)) if sign}
    finally:
        ledger.close()


def reconcile_until_gallery_holds(site: Site, count: int) -> None:
    """Run ``syncd reconcile`` as a process and SIGKILL it once the gallery holds ``count``."""
    proc = subprocess.Popen(
        [SYNCD, "reconcile", "-c", str(site.config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(site.items()) < count:
            assert proc.poll() is None, "reconcile ended before the gallery held every image"
            assert time.monotonic() < deadline, "the adds never reached the gallery"
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def lose_every_answer(site: Site, images: int) -> None:
    """Reconcile with every add's answer lost; killed once the gallery holds ``images``."""
    site.server.faults.lost_answer_rate = 1.0
    try:
        reconcile_until_gallery_holds(site, images)
    finally:
        site.server.faults.lost_answer_rate = 0.0


def test_items_of_lost_adds_are_deleted_when_their_files_are_gone(
    tmp_path: Path, gallery_server: GalleryServer, ledger_choice: LedgerChoice
) -> None:
    site = Site(tmp_path, gallery_server, gallery="similar", concurrency=2, ledger=ledger_choice)
    for n in range(IMAGES):
        site.write(f"d{n % 3}/{n}.jpg", 500 + n)
    lose_every_answer(site, IMAGES)
    unknown = {item.cont_sign for item in site.items()} - known_cont_signs(site)
    assert unknown, "every answer was recorded: nothing was lost"
    for n in range(0, IMAGES, 2):
        (site.root / f"d{n % 3}" / f"{n}.jpg").unlink()

    result = site.syncd("reconcile")

    assert result.code == 0, result
    site.assert_mirrors_disk()
    assert len(site.items()) == IMAGES // 2
    spool = site.ledger.with_name("ledger.db.inflight")
    assert not spool.exists() or not os.listdir(spool), "answered adds stay spooled"
    gallery_server.reset_counts()
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {}, "a converged tree still costs calls"


def test_lost_answers_of_files_still_there_are_adopted_without_duplicates(
    tmp_path: Path, gallery_server: GalleryServer, ledger_choice: LedgerChoice
) -> None:
    site = Site(tmp_path, gallery_server, gallery="similar", concurrency=2, ledger=ledger_choice)
    for n in range(IMAGES):
        site.write(f"{n}.jpg", 700 + n)
    lose_every_answer(site, IMAGES)

    result = site.syncd("reconcile")

    assert result.code == 0, result
    site.assert_mirrors_disk()
    assert known_cont_signs(site) == {item.cont_sign for item in site.items()}


def synced_file_and_lost_adds_of_deleted_files(
    tmp_path: Path, server: GalleryServer, lost: int, seed: int
) -> Site:
    """A site whose ``keep.jpg`` is synced, and whose gallery also holds ``lost`` images
    added by a reconcile that was then killed (their answers lost), files deleted since."""
    site = Site(tmp_path, server, gallery="similar", concurrency=2)
    site.write("keep.jpg", seed)
    assert site.syncd("reconcile").code == 0
    for n in range(lost):
        site.write(f"new/{n}.jpg", seed + 10 + n)
    lose_every_answer(site, lost + 1)
    for n in range(lost):
        (site.root / "new" / f"{n}.jpg").unlink()
    return site


def test_lost_adds_are_settled_even_when_nothing_else_is_due(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    site = synced_file_and_lost_adds_of_deleted_files(tmp_path, gallery_server, 4, 600)

    result = site.syncd("reconcile")

    assert result.code == 0, result
    site.assert_mirrors_disk()
    assert [item.path for item in site.items()] == ["keep.jpg"]


def test_lost_adds_wait_for_a_gallery_that_cannot_answer_now(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    site = synced_file_and_lost_adds_of_deleted_files(tmp_path, gallery_server, 3, 620)
    spool = site.ledger.with_name("ledger.db.inflight")
    gallery_server.faults.transient_rate = 1.0
    gallery_server.reset_counts()

    waiting = site.syncd("reconcile")

    # one search found the gallery failing; the other lost adds were not even tried
    assert site.calls() == {"search": 1}
    assert waiting.code == 1, waiting
    assert "unsettled: 3 adds whose answers were lost" in waiting.out
    status = site.syncd("status")
    assert "unsettled: 3 adds whose answers were lost" in status.out
    assert json.loads(site.syncd("status", "--json").out)["unsettled_adds"] == 3
    assert len(os.listdir(spool)) == 3
    gallery_server.faults.transient_rate = 0.0
    assert site.syncd("reconcile").code == 0
    site.assert_mirrors_disk()
    assert os.listdir(spool) == []
