"""One account: a quota pause one host runs into holds for every host."""

from __future__ import annotations

import time

from syncd.gallery.server import GalleryServer

from .cluster import gallery_calls, gallery_items, wait_until
from .conftest import MakeHost

#: seconds a paused host is watched for calls it must not make (a few heartbeats)
QUIET = 3.0


def _pending(host_status: dict[str, object]) -> int:
    return sum(int(lib["pending"]) for lib in host_status["libraries"])  # type: ignore[attr-defined]


def test_a_daily_quota_seen_by_one_host_pauses_the_others(
    sqlite_host: MakeHost, gallery_server: GalleryServer
) -> None:
    a = sqlite_host("host-a", settle=0.2)
    b = sqlite_host("host-b", settle=0.2)
    a.write("first.jpg", 50)
    b.write("first.jpg", 51)
    a.start()
    b.start()
    wait_until(lambda: len(gallery_items(gallery_server)) == 2, what="both hosts synced")
    synced_at = time.time()
    wait_until(
        lambda: all(h["last_seen"] > synced_at for h in a.status()["hosts"]),  # type: ignore[attr-defined]
        what="both hosts' heartbeats",
    )
    # one more call is admitted, the next one answers 17 (daily quota reached)
    gallery_server.faults.daily_limit = 1
    a.write("second.jpg", 52)
    a.write("third.jpg", 53)

    wait_until(lambda: a.status()["paused"] is not None, what="host-a records the pause")
    wait_until(
        lambda: "recorded by another host" in b.logged(), what="host-b takes up the pause"
    )
    gallery_server.reset_counts()
    b.write("second.jpg", 54)
    wait_until(lambda: _pending(b.status()) == 1, what="host-b records its new file")
    time.sleep(QUIET)

    assert gallery_calls(gallery_server) == {}, "a paused host called the gallery"
    assert b.status()["paused"] is not None
    assert a.running() and b.running()
