"""`syncd run` answers what settled with a scan of those paths only, and a rename with no read."""

from __future__ import annotations

import re

from .conftest import Daemon, calls, gallery_paths, write_image

#: the scanner's line for a targeted scan: "library photos (at 2 paths): 1 file, 1 new, ..."
_TARGETED = re.compile(r"library photos \(at \d+ paths?\): (.*)$", re.MULTILINE)


def targeted_scans(daemon: Daemon) -> list[str]:
    """The summaries of the targeted scans the daemon logged so far."""
    return _TARGETED.findall(daemon.log())


def test_a_new_file_costs_a_scan_of_its_path_only(daemon: Daemon) -> None:
    root = daemon.libraries[0].root
    for n in range(5):
        write_image(root / "old" / f"{n}.jpg", n)
    daemon.start()
    daemon.wait_until(lambda: len(gallery_paths(daemon.server)) == 5)
    write_image(root / "new.jpg", 10)
    daemon.wait_until(lambda: "photos/new.jpg" in gallery_paths(daemon.server))
    # the five files already known were not looked at again
    assert any(s.startswith("1 file, 1 new,") for s in targeted_scans(daemon)), daemon.log()
    assert daemon.stop() == 0


def test_a_rename_is_one_update_and_no_read(daemon: Daemon) -> None:
    root = daemon.libraries[0].root
    write_image(root / "keep.jpg", 1)
    write_image(root / "a.jpg", 2)
    daemon.start()
    daemon.wait_until(lambda: len(gallery_paths(daemon.server)) == 2)
    (root / "a.jpg").rename(root / "b.jpg")
    daemon.wait_until(
        lambda: set(gallery_paths(daemon.server)) == {"photos/keep.jpg", "photos/b.jpg"}
    )
    assert calls(daemon.server) == {"add": 2, "update": 1}
    scans = targeted_scans(daemon)
    assert any("1 new," in s and s.endswith("0 read, 1 known from another path") for s in scans), (
        daemon.log()
    )
    assert daemon.stop() == 0
