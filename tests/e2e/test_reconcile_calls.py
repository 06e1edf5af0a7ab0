"""`syncd reconcile` against the local gallery: the fewest calls the API allows
(docs/rules.md, Keeping the gallery in step)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from ledgers import LedgerChoice

from syncd.gallery.server import GalleryServer

from .site import Site


def test_first_reconcile_costs_one_add_per_image(site: Site) -> None:
    for n in range(6):
        site.write(f"trip/{n}.jpg", n)
    result = site.syncd("reconcile")
    assert result.code == 0, result
    assert site.calls() == {"add": 6}
    assert "6 added" in result.out
    site.assert_mirrors_disk()


def test_second_reconcile_without_change_makes_no_calls(site: Site) -> None:
    for n in range(4):
        site.write(f"{n}.jpg", n)
    assert site.syncd("reconcile").code == 0
    site.server.reset_counts()
    result = site.syncd("reconcile")
    assert result.code == 0
    assert site.calls() == {}
    assert "0 API calls" in result.out


def test_rename_costs_one_update_call(site: Site) -> None:
    site.write("old/name.jpg", 1)
    site.write("other.jpg", 2)
    assert site.syncd("reconcile").code == 0
    site.server.reset_counts()
    (site.root / "new").mkdir()
    (site.root / "old" / "name.jpg").rename(site.root / "new" / "renamed.jpg")
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"update": 1}
    site.assert_mirrors_disk()
    assert {item.path for item in site.items()} == {"new/renamed.jpg", "other.jpg"}


def test_move_between_libraries_of_one_gallery_costs_one_update(
    tmp_path: Path, gallery_server: GalleryServer, ledger_choice: LedgerChoice
) -> None:
    site = Site(tmp_path, gallery_server, extra_libraries=("archive",), ledger=ledger_choice)
    site.write("a.jpg", 1)
    site.write("stays.jpg", 2)
    assert site.syncd("reconcile").code == 0
    gallery_server.reset_counts()
    shutil.move(site.root / "a.jpg", tmp_path / "archive" / "a.jpg")
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"update": 1}
    named = {(item.library, item.path) for item in site.items()}
    assert named == {("archive", "a.jpg"), ("photos", "stays.jpg")}


def test_copies_of_an_image_become_one_item(site: Site) -> None:
    site.write("a/one.jpg", 7)
    shutil.copy(site.root / "a" / "one.jpg", site.root / "b.jpg")
    shutil.copy(site.root / "a" / "one.jpg", site.root / "c.jpg")
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"add": 1}
    [item] = site.items()
    assert item.path in {"a/one.jpg", "b.jpg", "c.jpg"}


def test_deleting_one_copy_moves_the_brief_to_another(site: Site) -> None:
    site.write("one.jpg", 7)
    assert site.syncd("reconcile").code == 0
    shutil.copy(site.root / "one.jpg", site.root / "two.jpg")
    assert site.syncd("reconcile").code == 0
    site.server.reset_counts()
    (site.root / "one.jpg").unlink()
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"update": 1}
    assert [item.path for item in site.items()] == ["two.jpg"]


def test_content_change_adds_the_new_image_then_deletes_the_old(site: Site) -> None:
    site.write("cover.jpg", 1)
    assert site.syncd("reconcile").code == 0
    [old] = site.items()
    site.server.reset_counts()
    site.write("cover.jpg", 2)
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"add": 1, "delete": 1}
    [new] = site.items()
    assert new.cont_sign != old.cont_sign and new.path == "cover.jpg"
    site.assert_mirrors_disk()


def test_path_stays_searchable_throughout_a_content_change(site: Site) -> None:
    site.write("cover.jpg", 1)
    assert site.syncd("reconcile").code == 0
    site.write("cover.jpg", 2)
    # slow answers widen any moment without an item for cover.jpg far beyond the polling step
    site.server.faults.latency = 0.3
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(sum(item.path == "cover.jpg" for item in site.items()))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert site.syncd("reconcile").code == 0
    finally:
        done.set()
        watcher.join()
    assert seen and min(seen) >= 1
    site.assert_mirrors_disk()


def test_deleting_2500_images_costs_three_delete_calls(site: Site) -> None:
    site.write("keep.jpg", 0)
    for n in range(1, 2501):
        site.write(f"bulk/{n // 100}/{n}.jpg", n)
    assert site.syncd("reconcile").code == 0
    assert len(site.items()) == 2501
    site.server.reset_counts()
    shutil.rmtree(site.root / "bulk")
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"delete": 3}
    assert [item.path for item in site.items()] == ["keep.jpg"]


def test_tags_of_the_first_matching_rule_go_with_the_add(
    tmp_path: Path, gallery_server: GalleryServer, ledger_choice: LedgerChoice
) -> None:
    site = Site(
        tmp_path,
        gallery_server,
        gallery="product",
        rules=(("shoes/**", (100, 11)), ("**", (7,))),
        ledger=ledger_choice,
    )
    site.write("shoes/red.jpg", 1)
    site.write("hats/blue.jpg", 2)
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"add": 2}
    tags = {item.path: item.tags for item in site.items()}
    assert tags == {"shoes/red.jpg": (100, 11), "hats/blue.jpg": (7,)}
