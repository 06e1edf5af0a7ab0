"""The service's plumbing: systemd notifications, /metrics and /healthz, JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from syncd.errors import ConfigError
from syncd.logformat import JsonFormatter
from syncd.metrics import Health, MetricsServer, MetricsSnapshot, parse_listen
from syncd.sdnotify import SystemdNotifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(10)
    yield sock, path
    sock.close()


def test_notifier_speaks_the_sd_notify_protocol(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
    assert n.enabled and n.watchdog_interval == 2.0
    n.ready("watching 1 library")
    n.status("3 queued")
    n.watchdog()
    n.stopping()
    got = [sock.recv(4096).decode() for _ in range(4)]
    assert got == [
        "READY=1\nSTATUS=watching 1 library",
        "STATUS=3 queued",
        "WATCHDOG=1",
        "STOPPING=1",
    ]
    n.close()


def test_notifier_reaches_an_abstract_socket() -> None:
    name = f"syncd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(10)
    try:
        SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_notifier_is_silent_without_systemd_and_survives_a_vanished_socket(tmp_path: Path) -> None:
    quiet = SystemdNotifier({})
    assert not quiet.enabled and quiet.watchdog_interval is None
    quiet.ready()  # nothing to send to, nothing raised
    gone = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    gone.watchdog()  # logs once, never raises


def test_watchdog_meant_for_another_process_is_ignored(tmp_path: Path) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "s"), "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
    assert os.getpid() != 1
    assert SystemdNotifier(env).watchdog_interval is None


@pytest.fixture
def metrics_server() -> Iterator[tuple[MetricsServer, list[Health]]]:
    health = [Health(True)]
    snap = MetricsSnapshot(
        files={"catalog": 120},
        file_states={("catalog", "synced"): 100, ("catalog", "failed"): 5},
        items={("product", "synced"): 100, ("product", "pending"): 15},
        calls={("add", "ok"): 115, ("add", "BadImageError"): 5, ("delete", "ok"): 1},
        queue_depth=15,
        watch_pending=3,
        rate=9.5,
        last_success=1_700_000_000.0,
        watch_modes={"catalog": "inotify"},
    )
    server = MetricsServer("127.0.0.1:0", lambda: snap, lambda: health[0])
    server.start()
    yield server, health
    server.close()


def test_metrics_endpoint_exposes_prometheus_text(
    metrics_server: tuple[MetricsServer, list[Health]],
) -> None:
    server, _ = metrics_server
    text = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
    for line in (
        'syncd_files{library="catalog"} 120.0',
        'syncd_library_files{library="catalog",state="failed"} 5.0',
        'syncd_items{gallery="product",state="pending"} 15.0',
        'syncd_api_calls_total{operation="add",result="ok"} 115.0',
        "syncd_queue_depth 15.0",
        "syncd_watch_pending_paths 3.0",
        "syncd_rate_calls_per_second 9.5",
        "syncd_last_success_timestamp_seconds 1.7e+09",
        'syncd_watch_mode{library="catalog",mode="inotify"} 1.0',
    ):
        assert line in text.splitlines()


def test_healthz_answers_200_when_healthy_and_503_with_the_reason(
    metrics_server: tuple[MetricsServer, list[Health]],
) -> None:
    server, health = metrics_server
    url = f"http://127.0.0.1:{server.port}/healthz"
    ok = requests.get(url, timeout=10)
    assert (ok.status_code, ok.text) == (200, "ok\n")
    health[0] = Health(False, "library root missing: catalog")
    bad = requests.get(url, timeout=10)
    assert (bad.status_code, bad.text) == (503, "library root missing: catalog\n")


def test_metrics_listen_address_is_parsed_or_refused() -> None:
    assert parse_listen("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_listen("[::1]:9108") == ("::1", 9108)
    with pytest.raises(ConfigError, match="metrics.listen"):
        parse_listen("9108")


def test_json_log_lines_are_one_object_each_with_extra_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("syncd.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "library %s: %s vanished", "catalog", "a\nb.jpg", extra={"library": "catalog"}
        )
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("scan failed")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # a newline in a path does not split a record
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "warning" and first["logger"] == "syncd.test.json"
    assert first["msg"] == "library catalog: a\nb.jpg vanished"
    assert first["library"] == "catalog" and first["ts"].endswith("+00:00")
    assert "ValueError: boom" in second["exc"]
