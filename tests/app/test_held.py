"""Held deletes (docs/rules.md, Mass deletes): listed through a reader, let go by
syncd.app.held.release_held in a transaction of its own, then deleted by the next sync."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.site import Site

from syncd.app.browse import open_reader
from syncd.app.errors import LedgerError
from syncd.app.held import held_libraries, release_held
from syncd.config import load_config
from syncd.gallery.server import GalleryServer

#: pictures synced; all but KEPT then vanish at once, so their deletes are held
PICTURES = 14
KEPT = 3


@pytest.fixture
def site(tmp_path: Path, gallery_server: GalleryServer) -> Site:
    site = Site(tmp_path, gallery_server, max_delete_fraction=0.25)
    for seed in range(1, PICTURES + 1):
        site.write(f"p{seed:02d}.jpg", seed)
    assert site.syncd("reconcile").code == 0
    for seed in range(KEPT + 1, PICTURES + 1):
        (site.root / f"p{seed:02d}.jpg").unlink()
    assert "held" in site.syncd("reconcile").out
    return site


def test_held_deletes_are_listed_let_go_and_then_deleted(site: Site) -> None:
    config = load_config(site.config)
    reader = open_reader(config)
    try:
        (held,) = held_libraries(reader)
        assert (held.name, held.count) == ("photos", PICTURES - KEPT)
        assert len(site.items()) == PICTURES  # held: nothing deleted yet
        assert release_held(config, "photos") == PICTURES - KEPT
        assert held_libraries(reader) == []
        assert release_held(config, "photos") == 0  # nothing left to let go
    finally:
        reader.close()
    assert site.syncd("reconcile").code == 0
    assert sorted(item.path for item in site.items()) == [
        f"p{seed:02d}.jpg" for seed in range(1, KEPT + 1)
    ]


def test_a_library_the_ledger_does_not_know_has_none_to_let_go(site: Site) -> None:
    assert release_held(load_config(site.config), "elsewhere") == 0
    reader = open_reader(load_config(site.config))
    try:
        assert [h.name for h in held_libraries(reader)] == ["photos"]
    finally:
        reader.close()


def test_without_a_ledger_none_is_held_and_none_is_made(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    config = load_config(Site(tmp_path, gallery_server).config)
    reader = open_reader(config)
    try:
        assert held_libraries(reader) == []
    finally:
        reader.close()
    with pytest.raises(LedgerError):
        release_held(config, "photos")
    assert not config.ledger.path.exists()
