"""Health tells the truth: a library polled instead of watched, whose root is unreadable, or
whose share dropped leaving an empty mount point, makes /healthz answer 503 with one line per
cause, and `status`, `status --json` and /metrics say the same; what the operator accepts in
`[health] accept` keeps 200. A real `syncd run`, real HTTP, real folders and mounts.
"""

from __future__ import annotations

import html
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from watch.userns import in_user_namespace, user_namespace_problem

from .conftest import (
    CONVERGE,
    SETTLE,
    Daemon,
    free_port,
    gallery_paths,
    metrics_text,
    tmpfs_at,
    write_image,
)

#: seconds between two snapshots of a polled root at this settle (the daemon's rule)
POLL = 1.0


@pytest.fixture
def watched(daemon: Daemon) -> Daemon:
    """The daemon with /metrics and /healthz on a free port, one image in its library."""
    daemon.metrics_listen = f"127.0.0.1:{free_port()}"
    write_image(daemon.libraries[0].root / "first.jpg", 60)
    return daemon


def codes(document: dict[str, Any]) -> list[tuple[str, bool]]:
    """(reason code, accepted) of the library `photos` in a `status --json` document."""
    (lib,) = [lib for lib in document["health"]["libraries"] if lib["name"] == "photos"]
    return [(r["code"], r["accepted"]) for r in lib["reasons"]]


def status_text(daemon: Daemon) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "status", "-c", str(daemon.config_path)],
        capture_output=True, text=True, timeout=CONVERGE,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_polled_root_answers_503_naming_it_until_the_operator_accepts_polling(
    watched: Daemon,
) -> None:
    daemon = watched
    daemon.polling = "on"
    daemon.console_listen = f"127.0.0.1:{free_port()}"
    daemon.start()
    daemon.wait_until(lambda: "photos/first.jpg" in gallery_paths(daemon.server))
    daemon.wait_until(lambda: daemon.healthz()[0] == 503, what="/healthz says polling")
    polled = f"library photos: polled every {POLL:g} s instead of watched: watch.polling = true"
    assert daemon.healthz() == (503, polled + "\n")
    port = daemon.metrics_listen.rpartition(":")[2]
    metrics = metrics_text(int(port)).splitlines()
    assert 'syncd_library_polling{library="photos"} 1.0' in metrics
    assert 'syncd_library_degraded{library="photos",reason="polling"} 1.0' in metrics
    document = daemon.status_json()
    assert codes(document) == [("polling", False)] and document["health"]["ok"] is False
    assert document["health"]["libraries"][0]["watch"] == "polling"
    text = status_text(daemon)
    assert "watching: photos polling" in text and f"degraded: {polled}" in text
    console = f"http://{daemon.console_listen}"
    assert codes(requests.get(f"{console}/api/status", timeout=10).json()) == [("polling", False)]
    page = requests.get(console, timeout=10).text
    assert f'<p class="alert degraded">{html.escape(polled)}</p>' in page
    assert '<td data-key="health">polling, degraded</td>' in page

    # polling is what this operator wants (a share, say): accepted, /healthz is well again
    daemon.accept = ["polling"]
    daemon.write_config()
    daemon.signal(signal.SIGHUP)
    daemon.wait_until(lambda: daemon.healthz()[0] == 200, what="/healthz accepts polling")
    assert daemon.healthz() == (200, f"ok\naccepted: {polled}\n")
    metrics = metrics_text(int(port)).splitlines()
    assert 'syncd_library_degraded{library="photos",reason="polling"} 0.0' in metrics
    document = daemon.status_json()
    assert codes(document) == [("polling", True)] and document["health"]["ok"] is True
    assert f"accepted: {polled}" in status_text(daemon)
    assert daemon.stop() == 0


def test_an_unreadable_root_answers_503_as_the_service_sees_it(watched: Daemon) -> None:
    if problem := user_namespace_problem():
        pytest.skip(problem)
    daemon = watched
    # the service's user has no say over the root's permissions, even where the test is root
    daemon.wrap = lambda command: in_user_namespace(command, map_root=False)
    root = daemon.libraries[0].root
    daemon.start()
    daemon.wait_until(lambda: "photos/first.jpg" in gallery_paths(daemon.server))
    assert daemon.healthz()[0] == 200
    root.chmod(0)
    try:
        daemon.wait_until(lambda: daemon.healthz()[0] == 503, what="/healthz says unreadable")
        line = f"library photos: root {root} cannot be read: Permission denied"
        assert daemon.healthz() == (503, line + "\n")
        # `status` run by another user (root here) tells what the service sees
        assert codes(daemon.status_json()) == [("root_unreadable", False)]
    finally:
        root.chmod(0o755)
    daemon.wait_until(lambda: daemon.healthz()[0] == 200, what="/healthz is well again")
    assert daemon.stop() == 0


@pytest.fixture
def mounted_root(daemon: Daemon) -> Iterator[Path]:
    """The library root as a tmpfs mount point of its own, on an empty folder (unmounted at
    the end)."""
    with tmpfs_at(daemon.libraries[0].root) as root:
        yield root


def unmount(root: Path) -> None:
    """umount, again while a scan holds the folder open."""
    for _ in range(50):
        if subprocess.run(["umount", str(root)], capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"cannot unmount {root}")


def test_a_share_that_dropped_leaving_an_empty_mount_point_answers_503(
    daemon: Daemon, mounted_root: Path
) -> None:
    daemon.metrics_listen = f"127.0.0.1:{free_port()}"
    root = mounted_root
    write_image(root / "on-the-share.jpg", 70)
    daemon.start()
    daemon.wait_until(lambda: "photos/on-the-share.jpg" in gallery_paths(daemon.server))
    daemon.wait_until(lambda: daemon.healthz()[0] == 200, what="a healthy start")
    unmount(root)  # the share drops: the empty folder beneath shows
    daemon.wait_until(lambda: daemon.healthz()[0] == 503, what="/healthz says unmounted")
    (line,) = daemon.healthz()[1].splitlines()
    assert line.startswith(
        f"library photos: root {root} is no longer a mount point: it is an empty folder on its "
        "parent's filesystem (device "
    )
    assert line.endswith("), but the ledger knows 1 file; is it mounted?")
    assert codes(daemon.status_json()) == [("root_unmounted", False)]
    # and nothing was deleted meanwhile
    time.sleep(4 * SETTLE)
    assert "photos/on-the-share.jpg" in gallery_paths(daemon.server)
    assert daemon.stop() == 0


def test_the_watch_limit_reached_mid_run_polls_syncs_new_folders_and_answers_503(
    watched: Daemon,
) -> None:
    if problem := user_namespace_problem():
        pytest.skip(problem)
    daemon = watched
    root = daemon.libraries[0].root
    for name in ("a", "b"):
        (root / name).mkdir()
    daemon.wrap = lambda command: in_user_namespace(command, watches=6)  # 3 taken at start
    daemon.start()
    daemon.wait_until(lambda: "photos/first.jpg" in gallery_paths(daemon.server))
    assert daemon.healthz()[0] == 200
    deep = root / "new"
    deep.mkdir()
    for depth in range(1, 9):  # the tree grows past the limit while syncd runs
        deep = deep / f"d{depth}"
        deep.mkdir()
    daemon.wait_until(lambda: daemon.healthz()[0] == 503, what="/healthz says polling")
    (line,) = daemon.healthz()[1].splitlines()
    assert line.startswith(f"library photos: polled every {POLL:g} s instead of watched: ")
    assert "inotify watch limit reached" in line
    time.sleep(4 * (SETTLE + POLL))  # what was looked at on the move to polling is done

    write_image(deep / "deep.jpg", 80)
    rel = "photos/" + (deep / "deep.jpg").relative_to(root).as_posix()
    daemon.wait_until(
        lambda: rel in gallery_paths(daemon.server), timeout=SETTLE + POLL + 30,
        what="the file in a folder inotify could not watch is synced",
    )  # fmt: skip
    warned = [
        entry for entry in daemon.log().splitlines()
        if " WARNING " in f" {entry}" and "sysctl " in entry  # after the time, if any
    ]  # fmt: skip
    assert len(warned) == 1, daemon.log()
    assert "inotify watch limit reached" in warned[0] and "raise it with `sysctl " in warned[0]
    assert "Unable to watch" not in daemon.log()
    document = daemon.status_json()
    assert codes(document) == [("inotify_limit", False)]
    assert document["health"]["libraries"][0]["watch"] == "polling"
    assert daemon.stop() == 0


def test_an_unknown_reason_in_health_accept_is_a_config_error(daemon: Daemon) -> None:
    daemon.accept = ["polled"]
    daemon.start()
    assert daemon.proc is not None
    assert daemon.proc.wait(timeout=CONVERGE) == 2
    (line,) = daemon.log().strip().splitlines()
    assert "health.accept" in line and "polled" in line and "polling" in line
