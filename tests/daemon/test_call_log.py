"""What `syncd run` logs about its calls: one line per call outcome with the path, the
operation, the gallery and the result; adopted duplicates read as adopted; the time on
each text line unless journald stamps it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from e2e.site import Site

from syncd.gallery.server import GalleryServer

from .conftest import Daemon, gallery_paths, write_image

#: the time the text format starts a line with ("2024-05-01 12:00:00,123")
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def outcome_lines(daemon: Daemon) -> list[str]:
    """The log's call outcome lines, without the time and level in front."""
    found = re.findall(r"syncd\.sync: (library \S+: (?:add|update|delete) .*)$", daemon.log(), re.M)
    return [str(line) for line in found]


def test_each_add_update_and_delete_is_one_line_naming_path_gallery_and_result(
    daemon: Daemon,
) -> None:
    root = daemon.libraries[0].root
    daemon.start()
    write_image(root / "trip" / "a.jpg", 1)
    daemon.wait_until(lambda: "photos/trip/a.jpg" in gallery_paths(daemon.server))
    daemon.wait_until(lambda: len(outcome_lines(daemon)) == 1, what="the add's line")
    assert outcome_lines(daemon) == ["library photos: add trip/a.jpg (same_hq): added"]

    (root / "trip" / "a.jpg").rename(root / "trip" / "b.jpg")
    daemon.wait_until(lambda: len(outcome_lines(daemon)) == 2, what="the rename's line")
    assert outcome_lines(daemon)[1] == "library photos: update trip/b.jpg (same_hq): updated"

    write_image(root / "trip" / "b.jpg", 2)  # new content at the same path
    daemon.wait_until(lambda: len(outcome_lines(daemon)) == 4, what="the edit's lines")
    assert outcome_lines(daemon)[2:] == [
        "library photos: add trip/b.jpg (same_hq): added",
        "library photos: delete trip/b.jpg (same_hq): deleted",
    ]

    write_image(root / "keep.jpg", 3)  # a root left empty sends no deletes
    daemon.wait_until(lambda: len(outcome_lines(daemon)) == 5, what="the add of keep.jpg")
    (root / "trip" / "b.jpg").unlink()
    daemon.wait_until(lambda: len(outcome_lines(daemon)) == 6, what="the delete's line")
    assert outcome_lines(daemon)[5] == "library photos: delete trip/b.jpg (same_hq): deleted"
    assert set(gallery_paths(daemon.server)) == {"photos/keep.jpg"}
    assert daemon.stop() == 0


def test_a_duplicate_found_in_the_gallery_is_logged_adopted(daemon: Daemon) -> None:
    root = daemon.libraries[0].root
    write_image(root / "a.jpg", 1)
    daemon.start()
    daemon.wait_until(lambda: "photos/a.jpg" in gallery_paths(daemon.server))
    assert daemon.stop() == 0
    # a lost ledger: the next start adds the image again and the gallery answers 216681
    for leftover in daemon.tmp.glob("ledger.db*"):
        if leftover.is_file():
            leftover.unlink()
    daemon.start()
    daemon.wait_until(
        lambda: "library photos: add a.jpg (same_hq): adopted" in outcome_lines(daemon),
        what="the adoption's line",
    )
    assert "error" not in daemon.log().lower()
    assert daemon.stop() == 0


def test_reconcile_counts_duplicates_as_adopted_not_as_errors(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    site = Site(tmp_path, gallery_server)
    for n in range(3):
        site.write(f"{n}.jpg", 10 + n)
    assert site.syncd("reconcile").code == 0
    site.forget_ledger()  # the gallery still holds all three: each add answers 216681
    site.write("new.jpg", 20)
    result = site.syncd("reconcile")
    assert result.code == 0, result
    assert "synced: 1 added, 3 adopted, 3 updated, 0 deleted; " in result.out
    assert "error" not in result.out + result.err


def test_text_lines_carry_the_time_unless_stderr_is_the_journal(daemon: Daemon) -> None:
    daemon.start()
    daemon.wait_until(lambda: "sync started" in daemon.log(), what="the start")
    assert daemon.stop() == 0
    lines = daemon.log().splitlines()
    assert lines and all(STAMP.match(line) for line in lines), lines

    # under systemd, JOURNAL_STREAM names stderr's device and inode: journald stamps the time
    into_journal = (
        "import os, sys; s = os.fstat(2); "
        "os.environ['JOURNAL_STREAM'] = f'{s.st_dev}:{s.st_ino}'; "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    daemon.wrap = lambda command: [sys.executable, "-c", into_journal, *command[1:]]
    daemon.start()
    daemon.wait_until(lambda: "sync started" in daemon.log(), what="the start")
    assert daemon.stop() == 0
    lines = daemon.log().splitlines()
    assert lines and not any(STAMP.match(line) for line in lines), lines
    assert any(line.startswith("INFO syncd") for line in lines), lines


def test_a_journal_stream_that_is_not_stderr_leaves_the_time_on(daemon: Daemon) -> None:
    daemon.extra_env = {"JOURNAL_STREAM": "1:1"}  # inherited, but stderr goes to a file
    daemon.start()
    daemon.wait_until(lambda: "sync started" in daemon.log(), what="the start")
    assert daemon.stop() == 0
    lines = daemon.log().splitlines()
    assert lines and all(STAMP.match(line) for line in lines), lines
