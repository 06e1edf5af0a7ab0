"""Observer selection and recovery, with real watchdog observers on temporary folders."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.paths.filters import WalkFilter
from syncd.paths.handoff import LookAgain
from syncd.watch.aggregator import SettleAggregator, WatchRoot, library_path_filter
from syncd.watch.observer import LibraryWatcher, choose_watch_mode, filesystem_type

IGNORE = (".*", "*~", "*.tmp")
MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
40 27 0:50 / /srv/images rw,relatime - nfs4 fileserver:/export/images rw,vers=4.2
41 40 8:2 / /srv/images/local rw,relatime - xfs /dev/sdb1 rw
42 27 0:51 / /mnt/smb\\040share rw - cifs //nas/share rw
43 27 0:52 / /mnt/remote rw - fuse.sshfs user@host:/data rw
44 27 0:53 / /mnt/stacked rw - ext4 /dev/sdc1 rw
45 44 0:54 / /mnt/stacked rw - nfs server:/x rw
"""


images = library_path_filter(WalkFilter(include=["*.jpg"], ignore=IGNORE))


@pytest.mark.parametrize(
    ("root", "polling", "expect_polling"),
    [
        ("/srv/images/catalog", "auto", True),  # NFS
        ("/srv/images/local/x", "auto", False),  # a local disk mounted below the NFS share
        ("/mnt/smb share/photos", "auto", True),  # CIFS, with the space escaped in mountinfo
        ("/mnt/remote", "auto", True),  # FUSE
        ("/mnt/stacked/a", "auto", True),  # the later mount on the same point wins
        ("/home/u/pictures", "auto", False),  # ext4
        ("/home/u/pictures", "on", True),
        ("/srv/images/catalog", "off", False),
    ],
)
def test_polling_is_chosen_where_inotify_cannot_serve(
    root: str, polling: str, expect_polling: bool
) -> None:
    choice = choose_watch_mode(root, polling, MOUNTINFO)  # type: ignore[arg-type]
    assert choice.polling is expect_polling
    assert choice.reason  # the log says why


def test_filesystem_type_reads_the_longest_mount_prefix() -> None:
    assert filesystem_type("/srv/images/local/a/b", MOUNTINFO) == "xfs"
    assert filesystem_type("/srv/imagesX", MOUNTINFO) == "ext4"
    assert filesystem_type("/anything", "") is None


class Harness:
    """A watcher feeding an aggregator, with the rescans it asked for."""

    def __init__(self, root: Path, polling: str = "auto", settle: float = 0.2) -> None:
        self.root = root
        self.rescans: list[tuple[str, str]] = []
        self.agg = SettleAggregator(settle, [WatchRoot("lib", str(root), images)])
        self.watcher = LibraryWatcher(
            self.agg.touch,
            lambda lib, why: self.rescans.append((lib, why)),
            polling=polling,  # type: ignore[arg-type]
            poll_interval=0.2,
        )

    def collect_until(
        self, done: Callable[[list[LookAgain]], bool], timeout: float = 20
    ) -> list[LookAgain]:
        """Batches seen until `done` holds for them (or the generous deadline passes)."""
        seen: list[LookAgain] = []
        end = time.monotonic() + timeout
        while not done(seen) and time.monotonic() < end:
            batch = self.agg.wait_batch(timeout=0.5)
            if batch is not None:
                seen.extend(batch)
        return seen


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def build(polling: str = "auto") -> Harness:
        root = tmp_path / "lib"
        root.mkdir(exist_ok=True)
        h = Harness(root, polling)
        made.append(h)
        return h

    yield build
    for h in made:
        h.watcher.close()
        h.agg.close()


def flat(seen: list[LookAgain]) -> set[str]:
    """Every path handed out."""
    return {p for look in seen for p in look.paths}


@pytest.mark.parametrize("polling", ["off", "on"])
def test_watcher_sees_create_rename_and_delete(
    harness: Callable[..., Harness], polling: str
) -> None:
    h = harness(polling)
    choice = h.watcher.watch("lib", h.root)
    assert choice.mode == ("polling" if polling == "on" else "inotify")
    (h.root / "sub").mkdir()
    (h.root / "sub" / "a.jpg").write_bytes(b"1")
    (h.root / "b.jpg").write_bytes(b"2")
    seen = h.collect_until(lambda s: {"sub", "b.jpg"} <= flat(s))
    assert {"sub", "b.jpg"} <= flat(seen)

    (h.root / "b.jpg").rename(h.root / "c.jpg")
    seen = h.collect_until(lambda s: {"b.jpg", "c.jpg"} <= flat(s))
    assert {"b.jpg", "c.jpg"} <= flat(seen)

    shutil.rmtree(h.root / "sub")
    seen = h.collect_until(lambda s: "sub" in flat(s))
    assert "sub" in flat(seen)
    assert h.rescans == []


def test_root_that_vanishes_and_comes_back_is_rewatched_and_rescanned(
    harness: Callable[..., Harness],
) -> None:
    h = harness()
    h.watcher.watch("lib", h.root)
    shutil.rmtree(h.root)
    h.watcher.supervise()
    assert h.watcher.modes() == {"lib": "missing"}
    assert h.rescans == []  # nothing to scan while it is away (and no deletes)
    h.root.mkdir()
    h.watcher.supervise()
    assert h.watcher.modes() == {"lib": "inotify"}
    assert h.rescans == [("lib", "root is back")]
    (h.root / "new.jpg").write_bytes(b"x")
    seen = h.collect_until(lambda s: "new.jpg" in flat(s))
    assert "new.jpg" in flat(seen)


def test_root_missing_at_start_is_watched_once_it_appears(
    harness: Callable[..., Harness],
) -> None:
    h = harness()
    h.root.rmdir()
    h.watcher.watch("lib", h.root)
    assert h.watcher.modes() == {"lib": "missing"}
    h.root.mkdir()
    h.watcher.supervise()
    assert h.watcher.modes() == {"lib": "inotify"}
    assert h.rescans == [("lib", "root is back")]


def test_root_replaced_by_another_directory_is_rescanned(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.watcher.watch("lib", h.root)
    aside = h.root.with_name("aside")
    h.root.rename(aside)
    h.root.mkdir()  # like an unmount revealing the empty mount point
    h.watcher.supervise()
    assert h.rescans == [("lib", "root replaced (mounted or unmounted)")]
    (h.root / "x.jpg").write_bytes(b"x")
    seen = h.collect_until(lambda s: "x.jpg" in flat(s))
    assert "x.jpg" in flat(seen)


def test_unwatched_library_reports_nothing_more(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.watcher.watch("lib", h.root)
    h.watcher.unwatch("lib")
    assert h.watcher.modes() == {}
    (h.root / "late.jpg").write_bytes(b"x")
    assert h.agg.wait_batch(timeout=1.0) is None
