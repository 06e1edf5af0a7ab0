"""NAS and OS system folders are not libraries: thumbnail caches, recycle bins, snapshots and
desktop litter are never walked or watched, and a move into a recycle bin is a delete.

The Synology cases run through the real ``syncd reconcile`` against the real local gallery
over loopback (``tests/e2e/site.py``)."""

from __future__ import annotations

import io
import logging
import os
import shutil
import time
from pathlib import Path

import pytest
from e2e.site import Site
from ledgers import LedgerChoice
from PIL import Image

from devkit.imagegen import make_image
from syncd.config import LibraryConfig, WatchConfig, load_config
from syncd.errors import ConfigError
from syncd.gallery.server import GalleryServer
from syncd.ledger.report import ledger_status
from syncd.paths.filters import SYSTEM_FOLDERS, WalkFilter, ignore_globs
from syncd.paths.handoff import LookAgain
from syncd.scan.walk import FileEntry, walk_library
from syncd.watch.aggregator import PathEvent, SettleAggregator, WatchRoot, library_path_filter

LIBRARY = LibraryConfig("photos", Path("."), "same_hq")

#: one path inside each vendor's system folders, every one named like a photo
LITTER = [
    "@eaDir/photo.jpg/SYNOPHOTO_THUMB_M.jpg",  # Synology thumbnails
    "trip/@eaDir/IMG_1.jpg/SYNOPHOTO_THUMB_XL.jpg",
    "#recycle/trip/IMG_0001.jpg",  # Synology recycle bin
    "#snapshot/GMT+01_2024-01-01/trip/IMG_0001.jpg",
    "@Recycle/old.jpg",  # QNAP
    "@Recently-Snapshot/GMT+01_2024-01-01/a.jpg",
    ".@__thumb/s800photo.jpg",
    "trip/@__thumb/photo.jpg",
    ".zfs/snapshot/daily/photo.jpg",  # ZFS
    ".snapshot/hourly.0/photo.jpg",  # NetApp
    "$RECYCLE.BIN/S-1-5-21/photo.jpg",  # Windows
    "System Volume Information/photo.jpg",
    "RECYCLER/photo.jpg",
    "trip/._IMG_0001.jpg",  # macOS AppleDouble
    ".Trashes/501/photo.jpg",
    "Network Trash Folder/photo.jpg",
    "Temporary Items/photo.jpg",
    "__MACOSX/trip/._IMG_0001.jpg",
    ".Trash-1000/files/photo.jpg",  # Linux desktops
    "lost+found/#12345.jpg",
]
PHOTOS = ["photo.jpg", "trip/IMG_0001.jpg", "trip/IMG_1.jpg"]


def _tree(root: Path) -> None:
    for relpath in [*LITTER, *PHOTOS]:
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"jpeg")


def _walked(root: Path, flt: WalkFilter) -> set[str]:
    return {e.relpath for e in walk_library(root, flt) if isinstance(e, FileEntry)}


@pytest.mark.parametrize("ignore", [WatchConfig().ignore, ()], ids=["default", "no-ignore"])
def test_system_folders_are_never_walked_whatever_ignore_says(
    tmp_path: Path, ignore: tuple[str, ...]
) -> None:
    _tree(tmp_path)
    flt = WalkFilter.for_library(LIBRARY, WatchConfig(ignore=ignore))
    assert _walked(tmp_path, flt) == set(PHOTOS)
    # without the built-in list every one of them would be a photo of the library
    assert _walked(tmp_path, WalkFilter(LIBRARY.include, (), ())) == {*LITTER, *PHOTOS}


def test_ignore_extends_the_built_in_list_and_a_bang_takes_one_back(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "keep.jpg.bak").write_bytes(b"jpeg")
    config = tmp_path / "config.toml"
    config.write_text(
        '[watch]\nignore = ["*.bak", "!#RECYCLE"]\n'
        '[[library]]\nname = "photos"\nroot = "."\ngallery = "same_hq"\ninclude = ["*.jpg*"]\n',
        encoding="utf-8",
    )
    loaded = load_config(config)
    flt = WalkFilter.for_library(loaded.libraries[0], loaded.watch)
    assert _walked(tmp_path, flt) == {*PHOTOS, "#recycle/trip/IMG_0001.jpg"}
    assert "#recycle" not in ignore_globs(loaded.watch.ignore)
    assert "@eaDir" in ignore_globs(loaded.watch.ignore)


def test_taking_back_a_name_that_is_not_built_in_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[watch]\nignore = ["!@eaDirr"]\n'
        '[[library]]\nname = "photos"\nroot = "."\ngallery = "same_hq"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"^watch\.ignore: '!@eaDirr' takes back no built-in"):
        load_config(config)


def test_every_built_in_name_is_one_the_filter_can_take() -> None:
    # plain names and affixes only: the walk's fast path stays string methods
    flt = WalkFilter.for_library(LIBRARY, WatchConfig())
    assert flt._quick is not None
    assert len({name.lower() for name in SYSTEM_FOLDERS}) == len(SYSTEM_FOLDERS)


class _StepClock:
    def __init__(self) -> None:
        self.mono = 1000.0

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return time.time()


def test_the_watcher_hands_over_no_event_inside_a_system_folder(tmp_path: Path) -> None:
    _tree(tmp_path)
    for relpath in [*LITTER, *PHOTOS]:
        os.utime(tmp_path / relpath, (time.time() - 60, time.time() - 60))
    accepts = library_path_filter(WalkFilter.for_library(LIBRARY, WatchConfig()))
    clock = _StepClock()
    agg = SettleAggregator(1.0, [WatchRoot("photos", str(tmp_path), accepts)], clock=clock)
    for relpath in [*LITTER, *PHOTOS]:
        agg.touch(PathEvent("created", str(tmp_path / relpath), False, ""))
    # a delete on a Synology share with its recycle bin on: the photo moves into #recycle
    agg.touch(
        PathEvent(
            "moved",
            str(tmp_path / "trip" / "IMG_9.jpg"),
            False,
            str(tmp_path / "#recycle" / "trip" / "IMG_9.jpg"),
        )
    )
    clock.mono += 2.0
    batch = agg.take_due()
    assert batch is not None
    [look] = batch
    assert isinstance(look, LookAgain)
    assert sorted(look.paths) == sorted([*PHOTOS, "trip/IMG_9.jpg"])


# -- through reconcile, against the real gallery --------------------------------------------


@pytest.fixture
def site(tmp_path: Path, gallery_server: GalleryServer, ledger_choice: LedgerChoice) -> Site:
    """A site on the shared ``gallery_server``, on each ledger engine in turn."""
    return Site(tmp_path, gallery_server, ledger=ledger_choice)


#: the default ignore list as it was before the built-in system folders: Synology's
#: thumbnails and recycle bin were walked (the config takes them back to stand for an older
#: syncd)
OLD_IGNORE = (
    '[".*", "*~", "*.tmp", "*.part", "*.swp", "*.crdownload", '
    '"!@eaDir", "!SYNOPHOTO_THUMB_*", "!#recycle"]'
)


THUMBNAIL = "@eaDir/photo.jpg/SYNOPHOTO_THUMB_M.jpg"


def _photo_and_thumbnail(site: Site, *, photo: bool = True) -> None:
    """Synology's layout: photo.jpg (800×600) and its thumbnail, a real 160×120 downscale
    (``photo=False``: the thumbnail only)."""
    original = make_image(4242, size=(800, 600))
    if photo:
        (site.root / "photo.jpg").write_bytes(original)
    thumb = Image.open(io.BytesIO(original)).resize((160, 120), Image.Resampling.LANCZOS)
    (site.root / THUMBNAIL).parent.mkdir(parents=True, exist_ok=True)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=85)
    (site.root / THUMBNAIL).write_bytes(out.getvalue())


def _set_ignore(site: Site, ignore: str | None) -> None:
    text = site.config.read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("ignore = "))
    if ignore is not None:
        text = text.replace("[watch]\n", f"[watch]\nignore = {ignore}\n")
    site.config.write_text(text + "\n", encoding="utf-8")


def test_a_synology_thumbnail_is_never_sent(site: Site) -> None:
    _photo_and_thumbnail(site)
    result = site.syncd("reconcile")
    assert result.code == 0, result
    assert site.calls() == {"add": 1}  # the photo; the thumbnail would cost a second add
    [item] = site.items()
    assert item.path == "photo.jpg"
    with site.open_ledger().transaction() as session:
        status = ledger_status(session, [("photos", "same_hq")], time.time())
    assert status.libraries[0].files == 1


def test_an_upgrade_ignores_the_thumbnail_and_the_dry_run_says_so_first(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    _set_ignore(site, OLD_IGNORE)  # an older syncd: the thumbnail is synced too
    _photo_and_thumbnail(site, photo=False)  # Synology made it before the photo was synced
    assert site.syncd("reconcile").code == 0
    _photo_and_thumbnail(site)
    assert site.syncd("reconcile").code == 0
    [item] = site.items()  # the gallery took the photo for the thumbnail (216681)
    assert item.path == THUMBNAIL  # the finding: a 160×120 thumbnail names the item
    site.server.reset_counts()

    _set_ignore(site, None)  # the upgrade: the built-in list is in force
    with caplog.at_level(logging.WARNING, logger="syncd"):
        dry = site.syncd("reconcile", "--dry-run")
    assert dry.code == 0, dry
    assert [r.getMessage() for r in caplog.records if "now ignored" in r.getMessage()] == [
        "library photos: 1 file is now ignored as NAS and OS system folders (@eaDir): "
        "0 items to delete, 1 kept as other copies exist"
    ]
    assert site.calls() == {}

    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"update": 1}
    [item] = site.items()
    assert item.path == "photo.jpg"


def test_a_move_into_the_recycle_bin_is_a_delete(site: Site) -> None:
    site.write("trip/IMG_0001.jpg", 1)
    site.write("trip/IMG_0002.jpg", 2)
    assert site.syncd("reconcile").code == 0
    site.server.reset_counts()
    (site.root / "#recycle" / "trip").mkdir(parents=True)
    shutil.move(site.root / "trip" / "IMG_0001.jpg", site.root / "#recycle" / "trip")
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"delete": 1}
    assert [item.path for item in site.items()] == ["trip/IMG_0002.jpg"]


def test_an_upgrade_deletes_what_only_the_recycle_bin_held(
    tmp_path: Path,
    gallery_server: GalleryServer,
    ledger_choice: LedgerChoice,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = Site(tmp_path, gallery_server, ledger=ledger_choice, max_delete_fraction=0.25)
    for n in range(12):  # 12 deleted photos in the bin: more than a mass vanish
        site.write(f"#recycle/trip/{n}.jpg", n)
    for n in range(12, 15):
        site.write(f"trip/{n}.jpg", n)
    site.write("#recycle/trip/copy.jpg", 12)  # a copy of a photo still in the library
    _set_ignore(site, OLD_IGNORE)
    assert site.syncd("reconcile").code == 0
    assert len(site.items()) == 15
    site.server.reset_counts()
    _set_ignore(site, None)
    with caplog.at_level(logging.WARNING, logger="syncd"):
        assert site.syncd("reconcile").code == 0
    said = [r.getMessage() for r in caplog.records]
    assert (
        "library photos: 13 files are now ignored as NAS and OS system folders (#recycle): "
        "12 items to delete, 1 kept as other copies exist"
    ) in said
    assert not any("held" in line for line in said)  # no mass-delete hold: not a vanish
    # one call deletes the 12; the copy named its item ("#" sorts first): the brief moves
    assert site.calls() == {"delete": 1, "update": 1}
    assert sorted(item.path for item in site.items()) == [f"trip/{n}.jpg" for n in range(12, 15)]
