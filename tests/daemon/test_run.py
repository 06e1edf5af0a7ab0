"""`syncd run` end to end: a real observer on temporary folders, the local gallery over HTTP.

Waits are generous deadlines for convergence ("the gallery follows"), never speed checks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time

import pytest
import requests

from .conftest import (
    Daemon,
    Library,
    calls,
    free_port,
    gallery_paths,
    metrics_text,
    wait_until,
    write_image,
)


def test_gallery_follows_files_created_changed_renamed_and_deleted(daemon: Daemon) -> None:
    root = daemon.libraries[0].root
    daemon.start()
    write_image(root / "a.jpg", 1)
    write_image(root / "b.jpg", 2)
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/a.jpg", "photos/b.jpg"})
    before = gallery_paths(daemon.server)

    write_image(root / "a.jpg", 3)  # new content at the same path
    wait_until(
        lambda: (
            gallery_paths(daemon.server).get("photos/a.jpg") not in (None, before["photos/a.jpg"])
        )
    )
    (root / "b.jpg").rename(root / "c.jpg")
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/a.jpg", "photos/c.jpg"})
    assert gallery_paths(daemon.server)["photos/c.jpg"] == before["photos/b.jpg"]  # same item

    (root / "a.jpg").unlink()
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/c.jpg"})
    assert calls(daemon.server) == {"add": 3, "update": 1, "delete": 2}
    assert daemon.stop() == 0


def test_gallery_follows_folders_created_moved_and_removed(daemon: Daemon) -> None:
    root = daemon.libraries[0].root
    # a root left empty sends no deletes (an unmounted share looks like that): keep one file
    write_image(root / "keep.jpg", 99)
    daemon.start()
    staging = daemon.tmp / "staging"
    for i in range(5):
        write_image(staging / "shoes" / f"{i}.jpg", 100 + i)
    shutil.copytree(staging / "shoes", root / "shoes")
    want = {"photos/keep.jpg"} | {f"photos/shoes/{i}.jpg" for i in range(5)}
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == want)

    (root / "shoes").rename(root / "boots")
    want = {"photos/keep.jpg"} | {f"photos/boots/{i}.jpg" for i in range(5)}
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == want)
    assert calls(daemon.server) == {"add": 6, "update": 5}  # a move is an update, never a re-add

    shutil.rmtree(root / "boots")
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/keep.jpg"})
    assert calls(daemon.server) == {"add": 6, "update": 5, "delete": 1}  # one batch of 5
    assert daemon.stop() == 0


def test_editor_save_by_rename_is_one_add_of_the_new_image(daemon: Daemon) -> None:
    root = daemon.libraries[0].root
    write_image(root / "a.jpg", 7)
    daemon.start()
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/a.jpg"})
    daemon.server.reset_counts()

    # the editor writes a temp file beside it, in pieces, then renames it over the original
    tmp = root / ".a.jpg.swp"
    data = daemon.tmp / "new.jpg"
    write_image(data, 8)
    with open(tmp, "wb") as fh:
        for chunk in range(0, data.stat().st_size, 256):
            fh.write(data.read_bytes()[chunk : chunk + 256])
            fh.flush()
    os.replace(tmp, root / "a.jpg")
    daemon.wait_until(lambda: calls(daemon.server).get("delete", 0) == 1)
    assert calls(daemon.server) == {"add": 1, "delete": 1}  # new image in, old one out
    assert set(gallery_paths(daemon.server)) == {"photos/a.jpg"}


def test_resaving_the_same_bytes_costs_no_call(daemon: Daemon) -> None:
    root = daemon.libraries[0].root
    write_image(root / "a.jpg", 9)
    daemon.start()
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/a.jpg"})
    daemon.server.reset_counts()
    same = root / "a.jpg.tmp"
    shutil.copyfile(root / "a.jpg", same)
    os.replace(same, root / "a.jpg")
    write_image(root / "marker.jpg", 10)  # something that must be synced after the resave
    daemon.wait_until(lambda: "photos/marker.jpg" in gallery_paths(daemon.server))
    assert calls(daemon.server) == {"add": 1}


def test_burst_copy_of_2000_files_is_2000_adds_and_nothing_more(daemon: Daemon) -> None:
    staging = daemon.tmp / "staging"
    for i in range(2000):
        write_image(staging / f"d{i % 20}" / f"{i}.jpg", 1000 + i)
    daemon.start()
    daemon.wait_until(lambda: "watching" in daemon.log(), what="the daemon to watch")
    shutil.copytree(staging, daemon.libraries[0].root / "burst")
    daemon.wait_until(lambda: calls(daemon.server).get("add", 0) >= 2000, timeout=240)
    time.sleep(1)  # anything extra would follow the last add at once
    assert calls(daemon.server) == {"add": 2000}
    assert len(gallery_paths(daemon.server)) == 2000
    assert daemon.stop() == 0


def test_sigterm_during_a_burst_loses_nothing(daemon: Daemon) -> None:
    staging = daemon.tmp / "staging"
    for i in range(400):
        write_image(staging / f"{i}.jpg", 5000 + i)
    daemon.qps = 40.0  # slow enough that the burst is surely still going at SIGTERM
    daemon.start()
    daemon.wait_until(lambda: "watching" in daemon.log(), what="the daemon to watch")
    shutil.copytree(staging, daemon.libraries[0].root / "burst")
    daemon.wait_until(lambda: calls(daemon.server).get("add", 0) > 0)
    assert daemon.stop() == 0
    assert len(gallery_paths(daemon.server)) < 400, "the burst ended before SIGTERM"

    daemon.start()  # the next start converges to what the disk implies
    daemon.wait_until(lambda: calls(daemon.server).get("add", 0) >= 400, timeout=120)
    time.sleep(1)
    assert calls(daemon.server) == {"add": 400}  # nothing added twice
    assert len(gallery_paths(daemon.server)) == 400
    assert daemon.stop() == 0


def test_sighup_adds_a_library_and_a_broken_config_is_refused(daemon: Daemon) -> None:
    daemon.start()
    write_image(daemon.libraries[0].root / "a.jpg", 20)
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/a.jpg"})

    good = daemon.config_path.read_text()
    daemon.config_path.write_text(good + "[[library]]\nname = 'broken'\n")  # no root, no gallery
    daemon.signal(signal.SIGHUP)
    daemon.wait_until(lambda: "reload refused" in daemon.log())
    assert daemon.running()

    extra = Library("scans", daemon.tmp / "scans")
    write_image(extra.root / "s.jpg", 21)
    daemon.libraries.append(extra)
    daemon.write_config()
    daemon.signal(signal.SIGHUP)
    daemon.wait_until(lambda: "scans/s.jpg" in gallery_paths(daemon.server))
    write_image(extra.root / "t.jpg", 22)  # and it is watched from then on
    daemon.wait_until(lambda: "scans/t.jpg" in gallery_paths(daemon.server))
    write_image(daemon.libraries[0].root / "b.jpg", 23)  # the first library still is
    daemon.wait_until(lambda: "photos/b.jpg" in gallery_paths(daemon.server))
    assert daemon.stop() == 0


def test_polling_observer_follows_changes(daemon: Daemon) -> None:
    daemon.polling = "on"
    daemon.start()
    root = daemon.libraries[0].root
    write_image(root / "p.jpg", 30)
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/p.jpg"})
    (root / "p.jpg").rename(root / "q.jpg")
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/q.jpg"})
    assert "with polling" in daemon.log()
    assert daemon.stop() == 0


def test_systemd_hears_ready_status_watchdog_and_stopping(daemon: Daemon) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = daemon.tmp / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(30)
    daemon.extra_env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}
    try:
        daemon.start()
        heard: list[str] = []
        while not any(m.startswith("WATCHDOG=1") for m in heard):
            heard.append(sock.recv(4096).decode())
        assert heard[0].startswith("READY=1\nSTATUS=watching 1 library")
        assert daemon.stop() == 0
        while not heard[-1].startswith("STOPPING=1"):
            heard.append(sock.recv(4096).decode())
        assert any(m.startswith("STATUS=") for m in heard[1:])
    finally:
        sock.close()


def test_metrics_and_healthz_are_served(daemon: Daemon) -> None:
    port = free_port()
    daemon.metrics_listen = f"127.0.0.1:{port}"
    write_image(daemon.libraries[0].root / "m.jpg", 40)
    daemon.start()
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/m.jpg"})

    def metrics() -> str:
        return metrics_text(port)

    daemon.wait_until(lambda: 'syncd_items{gallery="same_hq",state="synced"} 1.0' in metrics())
    text = metrics()
    assert 'syncd_files{library="photos"} 1.0' in text
    assert 'syncd_library_files{library="photos",state="synced"} 1.0' in text
    assert 'syncd_api_calls_total{operation="add",result="ok"} 1.0' in text
    health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    assert health.status_code == 200
    assert daemon.stop() == 0


def test_json_log_format_writes_one_object_per_line(daemon: Daemon) -> None:
    daemon.args = ["--log-format", "json"]
    write_image(daemon.libraries[0].root / "j.jpg", 50)
    daemon.start()
    daemon.wait_until(lambda: set(gallery_paths(daemon.server)) == {"photos/j.jpg"})
    assert daemon.stop() == 0
    lines = [line for line in daemon.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert {"ts", "level", "logger", "msg"} <= set(records[0])
    assert "test-sk" not in daemon.log()


def test_broken_config_exits_2_with_one_line(daemon: Daemon) -> None:
    daemon.write_config("[watch]\nsettle = 'soon'\n")
    daemon.start()
    assert daemon.proc is not None
    assert daemon.proc.wait(timeout=60) == 2
    lines = daemon.log().strip().splitlines()
    assert len(lines) == 1 and "settle" in lines[0]


@pytest.mark.slow
def test_soak_many_small_changes_converge(daemon: Daemon) -> None:
    root = daemon.libraries[0].root
    daemon.start()
    live: dict[str, int] = {}
    seed = 10_000
    end = time.monotonic() + 60
    n = 0
    while time.monotonic() < end:
        n += 1
        name = f"f{n % 50}.jpg"
        if n % 7 == 0 and live:
            gone = sorted(live)[n % len(live)]
            (root / gone).unlink()
            del live[gone]
        else:
            seed += 1
            write_image(root / name, seed)
            live[name] = seed
        time.sleep(0.05)
    wait_until(
        lambda: set(gallery_paths(daemon.server)) == {f"photos/{p}" for p in live}, timeout=120
    )
    assert daemon.stop() == 0
