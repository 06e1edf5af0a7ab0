"""Fresh changes first in the running service: a file a person drops into a
watched folder while an initial import is queued is in the gallery long before the
backlog is through, and the backlog still drains."""

from __future__ import annotations

from daemon.conftest import Daemon, calls, gallery_paths, write_image
from syncd.gallery.faults import FaultConfig

BACKLOG = 60


def test_a_dropped_file_overtakes_the_backlog(daemon: Daemon) -> None:
    root = daemon.libraries[0].root
    for n in range(BACKLOG):
        write_image(root / "import" / f"{n:03}.jpg", 100 + n)
    # the gallery takes 10 calls a second and the service sends no more: 6 s of backlog
    daemon.server.faults = FaultConfig(qps_limit=10.0)
    daemon.qps = 10.0
    daemon.start()
    daemon.wait_until(lambda: calls(daemon.server).get("add", 0) >= 5, what="the import started")
    write_image(root / "dropped.jpg", 7)
    daemon.wait_until(lambda: "photos/dropped.jpg" in gallery_paths(daemon.server))
    # it went ahead: most of the import was still waiting when it arrived
    imported = [p for p in gallery_paths(daemon.server) if p.startswith("photos/import/")]
    assert len(imported) < BACKLOG // 2, len(imported)
    daemon.wait_until(lambda: len(gallery_paths(daemon.server)) == BACKLOG + 1)
    assert "error 18" not in daemon.log()
    assert daemon.stop() == 0
