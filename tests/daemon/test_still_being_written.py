"""`syncd run` never sleeps on a file still being written: the scan leaves it to the
watcher, which hands it back once it is quiet, and other changes are synced meanwhile."""

from __future__ import annotations

import os
import threading
import time

from .conftest import CONVERGE, Daemon, calls, gallery_paths, write_image

SETTLE_HERE = 10.0
#: a work thread that waited for the writer would take three rounds of SETTLE_HERE before
#: the start-up scan ends; the scan that hands the file back ends within a few seconds
STARTUP_SCAN_DONE = 2.5 * SETTLE_HERE


def test_a_file_being_written_at_a_rescan_is_synced_once_quiet_and_others_meanwhile(
    daemon: Daemon,
) -> None:
    root = daemon.libraries[0].root
    daemon.settle = SETTLE_HERE
    # a copy in progress written through a second name outside the library, so no event
    # reaches the watcher (a writer on another host of a share): only the mtime says so
    elsewhere = write_image(daemon.tmp / "elsewhere" / "slow.jpg", 1)
    root.mkdir(parents=True)
    os.link(elsewhere, root / "slow.jpg")
    done = threading.Event()

    def write_slowly() -> None:
        end = time.monotonic() + CONVERGE
        while not done.wait(0.5) and time.monotonic() < end:
            write_image(elsewhere, 1)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        daemon.start()  # its start-up rescan finds slow.jpg being written
        daemon.wait_until(
            lambda: "library photos: slow.jpg is still being written" in daemon.log(),
            timeout=STARTUP_SCAN_DONE,
            what="the start-up scan to hand slow.jpg back",
        )
        write_image(root / "quick.jpg", 2)
        daemon.wait_until(lambda: "photos/quick.jpg" in gallery_paths(daemon.server))
        # synced while slow.jpg was still being written: the work thread did not wait for it
        assert writer.is_alive()
        assert "photos/slow.jpg" not in gallery_paths(daemon.server)
    finally:
        done.set()
        writer.join()
    # quiet for settle seconds now: handed back by the watcher and synced, once
    daemon.wait_until(lambda: "photos/slow.jpg" in gallery_paths(daemon.server))
    assert calls(daemon.server) == {"add": 2}
    assert daemon.stop() == 0
