"""The settle/coalesce stage: events are hints, quiet paths come out once, ignored ones never.

Its only output is ``LookAgain``: which paths of which library to look at; what each path
is now (file, folder, gone) is the scan's to read (tests/scan/test_scanner_paths.py).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from syncd.paths.filters import WalkFilter
from syncd.paths.handoff import LookAgain
from syncd.watch.aggregator import (
    PathEvent,
    SettleAggregator,
    WatchRoot,
    library_path_filter,
)

SETTLE = 2.0
IGNORE = (".*", "*~", "*.tmp", "*.part", "*.swp", "*.crdownload")


class StepClock:
    """A clock the test moves by hand; wall time starts at the real time so file mtimes
    written by the test are comparable."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.now_wall = time.time()

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return self.now_wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.now_wall += seconds


images_only = library_path_filter(WalkFilter(include=["*.jpg"], ignore=IGNORE))


def make(tmp_path: Path, *libs: tuple[str, Path]) -> tuple[SettleAggregator, StepClock]:
    clock = StepClock()
    roots = [WatchRoot(name, str(root), images_only) for name, root in libs] or [
        WatchRoot("lib", str(tmp_path), images_only)
    ]
    return SettleAggregator(SETTLE, roots, clock=clock), clock


def write(path: Path, data: bytes = b"x", age: float = 60.0) -> Path:
    """A file whose mtime is `age` seconds in the past (it was written before the events)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    old = time.time() - age
    os.utime(path, (old, old))
    return path


def ev(kind: str, path: Path, is_dir: bool = False, dest: Path | None = None) -> PathEvent:
    return PathEvent(kind, str(path), is_dir, str(dest) if dest else "")  # type: ignore[arg-type]


def test_file_comes_out_only_after_settle_seconds_of_quiet(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    f = write(tmp_path / "a.jpg")
    agg.touch(ev("created", f))
    clock.advance(SETTLE - 0.1)
    assert agg.take_due() is None
    clock.advance(0.2)
    batch = agg.take_due()
    assert batch == (LookAgain("lib", ("a.jpg",)),)
    assert agg.take_due() is None
    assert agg.pending_count == 0


def test_each_event_restarts_the_settle_time(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    f = write(tmp_path / "a.jpg")
    agg.touch(ev("created", f))
    for _ in range(5):
        clock.advance(SETTLE * 0.75)
        agg.touch(ev("modified", f))
        assert agg.take_due() is None
    clock.advance(SETTLE)
    batch = agg.take_due()
    assert batch is not None and batch[0].paths == ("a.jpg",)


def test_file_still_being_written_without_events_waits_until_its_mtime_is_old(
    tmp_path: Path,
) -> None:
    agg, clock = make(tmp_path)
    f = write(tmp_path / "slow.jpg")
    agg.touch(ev("created", f))
    clock.advance(SETTLE)
    # a writer on another host (no event reaches us) wrote half a second ago
    recent = clock.wall() - 0.5
    os.utime(f, (recent, recent))
    assert agg.take_due() is None
    assert agg.pending_count == 1
    clock.advance(SETTLE - 0.5)
    batch = agg.take_due()
    assert batch is not None and batch[0].paths == ("slow.jpg",)


def test_file_dated_in_the_future_is_not_held_back(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    f = write(tmp_path / "camera.jpg", age=-86400)  # copied with the mtime of a camera a day ahead
    agg.touch(ev("created", f))
    clock.advance(SETTLE)
    assert agg.take_due() == (LookAgain("lib", ("camera.jpg",)),)


def test_size_change_seen_at_the_deadline_waits_again(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    f = write(tmp_path / "a.jpg")
    agg.touch(ev("created", f))
    clock.advance(SETTLE)
    recent = clock.wall() - 0.1
    os.utime(f, (recent, recent))
    assert agg.take_due() is None  # young mtime: looked once, remembered its size
    write(f, b"longer now", age=SETTLE * 3)  # grown, with an old mtime (cp -p style)
    clock.advance(SETTLE)
    assert agg.take_due() is None  # size moved since the last look
    clock.advance(SETTLE)
    batch = agg.take_due()
    assert batch is not None and batch[0].paths == ("a.jpg",)


def test_copy_of_ten_thousand_files_into_a_new_folder_is_one_path(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    new = tmp_path / "incoming"
    new.mkdir()
    os.utime(new, (time.time() - 60, time.time() - 60))
    agg.touch(ev("created", new, is_dir=True))
    for i in range(10_000):
        p = new / f"sub{i % 10}" / f"{i}.jpg"
        agg.touch(ev("created", p))
        agg.touch(ev("modified", p))
    assert agg.pending_count == 1
    clock.advance(SETTLE)
    assert agg.take_due() == (LookAgain("lib", ("incoming",)),)


def test_rsync_temp_file_renamed_into_place_yields_only_the_final_name(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    tmp = tmp_path / "photos" / ".a.jpg.Xy12Ab"
    final = write(tmp_path / "photos" / "a.jpg")
    agg.touch(ev("created", tmp))
    for _ in range(20):
        agg.touch(ev("modified", tmp))
    agg.touch(ev("moved", tmp, dest=final))
    clock.advance(SETTLE)
    # the source was never the library's business (an ignored name)
    assert agg.take_due() == (LookAgain("lib", ("photos/a.jpg",)),)


def test_editor_save_by_rename_yields_one_changed_file(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    f = write(tmp_path / "a.jpg")
    tmp = tmp_path / "a.jpg.tmp"
    backup = tmp_path / "a.jpg~"
    # gedit/vim style: move the original aside, write a temp, rename the temp over
    agg.touch(ev("moved", f, dest=backup))
    agg.touch(ev("created", tmp))
    agg.touch(ev("modified", tmp))
    agg.touch(ev("moved", tmp, dest=f))
    agg.touch(ev("deleted", backup))
    clock.advance(SETTLE)
    assert agg.take_due() == (LookAgain("lib", ("a.jpg",)),)


def test_deleted_file_is_handed_out_for_the_scan_to_find_gone(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    agg.touch(ev("deleted", tmp_path / "gone.jpg"))
    clock.advance(SETTLE)
    assert agg.take_due() == (LookAgain("lib", ("gone.jpg",)),)


def test_deleted_folder_is_one_path(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    d = tmp_path / "old"
    for i in range(50):
        agg.touch(ev("deleted", d / f"{i}.jpg"))
    agg.touch(ev("deleted", d, is_dir=True))
    clock.advance(SETTLE)
    assert agg.take_due() == (LookAgain("lib", ("old",)),)


def test_the_event_kind_does_not_decide_what_is_handed_out(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    back = write(tmp_path / "restored.jpg")
    agg.touch(ev("deleted", back))  # deleted, then restored before it settled
    agg.touch(ev("created", tmp_path / "never-written.jpg"))
    clock.advance(SETTLE)
    # one path each, whatever happened to it: the scan reads what it is now
    assert agg.take_due() == (LookAgain("lib", ("never-written.jpg", "restored.jpg")),)


def test_rename_inside_a_root_hands_out_its_source_and_destination(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    dst = write(tmp_path / "b.jpg")
    agg.touch(ev("moved", tmp_path / "a.jpg", dest=dst))
    clock.advance(SETTLE)
    assert agg.take_due() == (LookAgain("lib", ("a.jpg", "b.jpg")),)


def test_move_between_libraries_hands_each_library_its_path(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    dst = write(two / "b.jpg")
    agg, clock = make(tmp_path, ("one", one), ("two", two))
    agg.touch(ev("moved", one / "a.jpg", dest=dst))
    clock.advance(SETTLE)
    assert agg.take_due() == (LookAgain("one", ("a.jpg",)), LookAgain("two", ("b.jpg",)))


def test_folder_moved_inside_a_root_is_two_paths_and_no_per_file_noise(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    new = tmp_path / "2024"
    for i in range(100):
        write(new / f"{i}.jpg")
    old_t = time.time() - 60
    os.utime(new, (old_t, old_t))
    old = tmp_path / "unsorted"
    agg.touch(ev("moved", old, is_dir=True, dest=new))
    for i in range(100):  # watchdog follows a directory move with one move per child
        agg.touch(ev("moved", old / f"{i}.jpg", dest=new / f"{i}.jpg"))
    clock.advance(SETTLE)
    assert agg.take_due() == (LookAgain("lib", ("2024", "unsorted")),)


def test_git_checkout_burst_reports_each_file_once(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    paths = [write(tmp_path / f"d{i % 20}" / f"{i}.jpg") for i in range(500)]
    for p in paths:  # unlink + create + several writes + close, as a checkout does
        agg.touch(ev("deleted", p))
        agg.touch(ev("created", p))
        for _ in range(3):
            agg.touch(ev("modified", p))
    clock.advance(SETTLE)
    batch = agg.take_due()
    assert batch is not None
    files = batch[0].paths
    assert len(files) == 500 and len(set(files)) == 500
    assert agg.take_due() is None


def test_ignored_names_never_pass(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    for rel in (".git/objects/ab/cd.jpg", "a.jpg.part", ".hidden.jpg", "b.jpg~", "c.swp",
                "d.jpg.crdownload", "e.tmp", "notes.txt"):  # fmt: skip
        agg.touch(ev("created", tmp_path / rel))
    agg.touch(ev("created", tmp_path / ".cache", is_dir=True))
    clock.advance(SETTLE * 2)
    assert agg.pending_count == 0
    assert agg.take_due() is None


def test_events_outside_every_root_and_on_the_root_itself_are_dropped(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    agg, clock = make(tmp_path, ("lib", root))
    agg.touch(ev("created", tmp_path / "libx" / "a.jpg"))  # a sibling sharing the prefix
    agg.touch(ev("modified", root, is_dir=True))
    clock.advance(SETTLE)
    assert agg.take_due() is None


def test_nested_library_roots_each_get_the_path(tmp_path: Path) -> None:
    inner = tmp_path / "catalog"
    f = write(inner / "shoe.jpg")
    agg, clock = make(tmp_path, ("all", tmp_path), ("catalog", inner))
    agg.touch(ev("created", f))
    clock.advance(SETTLE)
    batch = agg.take_due()
    assert batch is not None
    assert set(batch) == {
        LookAgain("all", ("catalog/shoe.jpg",)),
        LookAgain("catalog", ("shoe.jpg",)),
    }


def test_full_rescan_waits_for_the_burst_and_replaces_pending_paths(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    agg.touch(ev("created", write(tmp_path / "a.jpg")))
    agg.request_rescan("lib")
    clock.advance(SETTLE * 0.75)
    agg.touch(ev("created", write(tmp_path / "b.jpg")))
    clock.advance(SETTLE * 0.75)
    assert agg.take_due() is None
    clock.advance(SETTLE)
    assert agg.take_due() == (LookAgain("lib", full_rescan=True),)
    assert agg.pending_count == 0


def test_removed_library_drops_its_pending_work(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    agg.touch(ev("created", write(tmp_path / "a.jpg")))
    agg.set_roots([])
    clock.advance(SETTLE)
    assert agg.take_due() is None


def test_wait_batch_returns_when_the_path_settles(tmp_path: Path) -> None:
    agg = SettleAggregator(0.2, [WatchRoot("lib", str(tmp_path), images_only)])
    f = write(tmp_path / "a.jpg")
    agg.touch(ev("created", f))
    batch = agg.wait_batch(timeout=30)
    assert batch == (LookAgain("lib", ("a.jpg",)),)


def test_close_releases_a_waiting_consumer(tmp_path: Path) -> None:
    agg = SettleAggregator(0.2, [WatchRoot("lib", str(tmp_path), images_only)])
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(agg.wait_batch(timeout=None)))
    t.start()
    agg.close()
    t.join(timeout=30)
    assert not t.is_alive() and out == [None]


def test_concurrent_observer_threads_lose_no_path(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    paths = [write(tmp_path / f"t{i % 4}" / f"{i}.jpg") for i in range(2000)]

    def feed(part: list[Path]) -> None:
        for p in part:
            agg.touch(ev("created", p))
            agg.touch(ev("modified", p))

    threads = [threading.Thread(target=feed, args=(paths[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clock.advance(SETTLE)
    batch = agg.take_due()
    assert batch is not None
    assert sorted(batch[0].paths) == sorted(str(p.relative_to(tmp_path)) for p in paths)


# -- files a scan found still being written come back once quiet ------------------------


def test_file_handed_back_by_a_scan_comes_out_once_its_mtime_is_settle_old(
    tmp_path: Path,
) -> None:
    agg, clock = make(tmp_path)
    f = write(tmp_path / "slow.jpg")
    recent = clock.wall() - 0.5  # the scan saw it written half a second ago
    os.utime(f, (recent, recent))
    agg.look_again_when_quiet(LookAgain("lib", ("slow.jpg",)))
    assert agg.take_due() is None  # looked at once: it is owed 1.5 s more, not a whole settle
    assert agg.pending_count == 1
    clock.advance(SETTLE - 0.5)
    assert agg.take_due() == (LookAgain("lib", ("slow.jpg",)),)
    assert agg.pending_count == 0


def test_file_handed_back_that_is_already_quiet_comes_out_at_the_next_look(
    tmp_path: Path,
) -> None:
    agg, _ = make(tmp_path)
    write(tmp_path / "done.jpg", age=SETTLE * 3)
    agg.look_again_when_quiet(LookAgain("lib", ("done.jpg",)))
    assert agg.take_due() == (LookAgain("lib", ("done.jpg",)),)


def test_file_handed_back_keeps_the_deadline_of_a_newer_event(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    f = write(tmp_path / "a.jpg")
    agg.touch(ev("modified", f))  # written again after the scan looked
    agg.look_again_when_quiet(LookAgain("lib", ("a.jpg",)))
    assert agg.take_due() is None
    clock.advance(SETTLE)
    assert agg.take_due() == (LookAgain("lib", ("a.jpg",)),)


def test_file_handed_back_during_a_coming_full_rescan_is_left_to_it(tmp_path: Path) -> None:
    agg, clock = make(tmp_path)
    write(tmp_path / "a.jpg")
    agg.request_rescan("lib")
    agg.look_again_when_quiet(LookAgain("lib", ("a.jpg",)))
    clock.advance(SETTLE)
    assert agg.take_due() == (LookAgain("lib", full_rescan=True),)
