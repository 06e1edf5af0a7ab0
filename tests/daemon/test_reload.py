"""A reload (SIGHUP) restarts only the parts whose section of the config changed.

A real `syncd run`, real watchdog observers on temporary folders, the local gallery over
HTTP. What each part does is read from the daemon's log (a root is (re)watched: "library X:
watching ROOT with"; the sync workers restart: "restarting the sync workers") and from
/metrics; waits are deadlines for convergence, never speed checks.
"""

from __future__ import annotations

import re
import signal
import socket

import requests

from .conftest import Daemon, Library, free_port, gallery_paths, metrics_text, write_image


def _watched(daemon: Daemon, library: str) -> int:
    """How many times the daemon (re)watched ``library``'s root so far."""
    return len(re.findall(rf"library {library}: watching \S+ with ", daemon.log()))


def _rescanned(daemon: Daemon, library: str) -> int:
    """How many times a reload rescanned ``library`` for changed rules."""
    return daemon.log().count(f"library {library}: rules changed; rescanning")


def _reload(daemon: Daemon, config: str) -> None:
    """Write ``config``, send SIGHUP, wait until the reload is done."""
    done = daemon.log().count("config reloaded")
    daemon.config_path.write_text(config)
    daemon.signal(signal.SIGHUP)
    daemon.wait_until(lambda: daemon.log().count("config reloaded") > done, what="the reload")


def _two_libraries(daemon: Daemon) -> None:
    daemon.libraries.append(Library("scans", daemon.tmp / "scans"))
    write_image(daemon.libraries[0].root / "p.jpg", 1)
    write_image(daemon.libraries[1].root / "s.jpg", 2)
    write_image(daemon.libraries[1].root / "s.png", 3)
    daemon.start()
    want = {"photos/p.jpg", "scans/s.jpg", "scans/s.png"}
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == want)


def test_a_new_qps_re_rates_the_workers_and_keeps_every_watch(daemon: Daemon) -> None:
    port = free_port()
    daemon.metrics_listen = f"127.0.0.1:{port}"
    _two_libraries(daemon)
    daemon.wait_until(lambda: "syncd_rate_calls_per_second 500.0" in metrics_text(port))
    watched = (_watched(daemon, "photos"), _watched(daemon, "scans"))
    assert watched == (1, 1)

    daemon.qps = 3.0
    daemon.write_config()
    text = daemon.config_path.read_text()
    _reload(daemon, text)
    log = daemon.log()
    assert "restarting the sync workers (qps changed)" in log
    assert "at most 3.0 calls/s" in log
    daemon.wait_until(lambda: "syncd_rate_calls_per_second 3.0" in metrics_text(port))
    # no root watched again, no library rescanned, nothing said to need a restart
    assert (_watched(daemon, "photos"), _watched(daemon, "scans")) == watched
    assert _rescanned(daemon, "photos") == _rescanned(daemon, "scans") == 0
    assert "after a restart" not in log
    # and both libraries are still followed
    write_image(daemon.libraries[0].root / "q.jpg", 4)
    write_image(daemon.libraries[1].root / "t.jpg", 5)
    daemon.wait_until(lambda: {"photos/q.jpg", "scans/t.jpg"} <= set(gallery_paths(daemon.server)))
    assert daemon.stop() == 0


def test_one_librarys_globs_rescan_it_alone_and_a_new_root_re_watches_it_alone(
    daemon: Daemon,
) -> None:
    _two_libraries(daemon)
    write_image(daemon.libraries[0].root / "p.png", 6)
    daemon.wait_until(lambda: "photos/p.png" in gallery_paths(daemon.server))
    workers = daemon.log().count("sync started")

    daemon.write_config()
    text = daemon.config_path.read_text()
    # scans leaves its PNGs out from now on; photos keeps its own
    _reload(daemon, text.replace('name = "scans"\n', 'name = "scans"\nexclude = ["*.png"]\n'))
    assert _rescanned(daemon, "scans") == 1
    assert _rescanned(daemon, "photos") == 0
    assert (_watched(daemon, "photos"), _watched(daemon, "scans")) == (1, 1)
    daemon.wait_until(lambda: "scans/s.png" not in gallery_paths(daemon.server))
    assert {"photos/p.jpg", "photos/p.png", "scans/s.jpg"} == set(gallery_paths(daemon.server))
    # the workers take the libraries' rules too: they restarted once
    assert daemon.log().count("sync started") == workers + 1

    # a new root for scans: its watch alone starts again, on the new folder
    moved = daemon.tmp / "scans2"
    write_image(moved / "m.jpg", 7)
    text = daemon.config_path.read_text()
    _reload(daemon, text.replace(f'root = "{daemon.libraries[1].root}"', f'root = "{moved}"'))
    assert f"library scans: watching {moved} with " in daemon.log()
    assert (_watched(daemon, "photos"), _watched(daemon, "scans")) == (1, 2)
    daemon.wait_until(lambda: "scans/m.jpg" in gallery_paths(daemon.server))
    write_image(moved / "n.jpg", 8)  # watched from then on
    write_image(daemon.libraries[0].root / "r.jpg", 9)  # and photos still is
    daemon.wait_until(lambda: {"scans/n.jpg", "photos/r.jpg"} <= set(gallery_paths(daemon.server)))
    assert daemon.stop() == 0


def test_a_new_metrics_address_is_served_and_the_old_one_released(daemon: Daemon) -> None:
    old, new = free_port(), free_port()
    daemon.metrics_listen = f"127.0.0.1:{old}"
    write_image(daemon.libraries[0].root / "a.jpg", 10)
    daemon.start()
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/a.jpg"})
    daemon.wait_until(lambda: "syncd_queue_depth" in metrics_text(old))
    watched = _watched(daemon, "photos")
    workers = daemon.log().count("sync started")

    daemon.metrics_listen = f"127.0.0.1:{new}"
    daemon.write_config()
    daemon.signal(signal.SIGHUP)
    daemon.wait_until(lambda: "syncd_queue_depth" in metrics_text(new))
    assert metrics_text(old) == ""  # nothing listens there any more
    answer = requests.get(f"http://127.0.0.1:{new}/healthz", timeout=10)
    assert (answer.status_code, answer.text) == (200, "ok\n")
    # the listener alone changed
    daemon.wait_until(lambda: "config reloaded" in daemon.log())
    assert _watched(daemon, "photos") == watched
    assert daemon.log().count("sync started") == workers
    assert daemon.stop() == 0


def test_a_taken_metrics_address_keeps_the_old_one_serving(daemon: Daemon) -> None:
    old = free_port()
    daemon.metrics_listen = f"127.0.0.1:{old}"
    daemon.start()
    daemon.wait_until(lambda: "syncd_queue_depth" in metrics_text(old))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        daemon.metrics_listen = f"127.0.0.1:{port}"
        daemon.write_config()
        _reload(daemon, daemon.config_path.read_text())
        assert f"cannot listen on 127.0.0.1:{port} for metrics.listen" in daemon.log()
        assert "syncd_queue_depth" in metrics_text(old)
        assert daemon.running()
    finally:
        taken.close()
    assert daemon.stop() == 0


def _console_answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    except requests.ConnectionError:
        return False


def test_a_new_console_address_is_served_and_the_old_one_released(daemon: Daemon) -> None:
    old, new = free_port(), free_port()
    daemon.console_listen = f"127.0.0.1:{old}"
    daemon.start()
    daemon.wait_until(lambda: _console_answers(old), what="the console")
    watched = _watched(daemon, "photos")
    workers = daemon.log().count("sync started")

    daemon.console_listen = f"127.0.0.1:{new}"
    daemon.write_config()
    _reload(daemon, daemon.config_path.read_text())
    assert _console_answers(new)
    assert not _console_answers(old)
    assert f"console on http://127.0.0.1:{new}" in daemon.log()
    assert _watched(daemon, "photos") == watched
    assert daemon.log().count("sync started") == workers
    assert daemon.stop() == 0
