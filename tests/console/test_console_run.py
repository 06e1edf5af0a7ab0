"""``syncd run`` serves the console beside the sync when ``console.listen`` is set, and
stops it with the rest on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests

from syncd.gallery.server import GalleryServer

from .conftest import PASSWORD, build_site, free_port, wait_until_listening


def test_syncd_run_serves_the_console_while_it_syncs(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    site = build_site(tmp_path, gallery_server)
    port = free_port()
    text = site.config.read_text(encoding="utf-8")
    site.config.write_text(text.replace("127.0.0.1:0", f"127.0.0.1:{port}"), encoding="utf-8")
    expected = json.loads(site.syncd("status", "--json").out)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syncd.cli", "run", "-c", str(site.config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_listening(daemon, port)
        answer = requests.get(f"{url}/api/status", headers={"Authorization": f"Bearer {PASSWORD}"})
        assert answer.status_code == 200
        assert [lib["name"] for lib in answer.json()["libraries"]] == ["photos"]
        assert answer.json()["libraries"][0]["held_deletes"] == expected["libraries"][0][
            "held_deletes"
        ]
        assert requests.get(f"{url}/api/status").status_code == 401
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(timeout=60)
        finally:
            if daemon.poll() is None:
                daemon.kill()
    assert code == 0
    stderr = daemon.stderr.read() if daemon.stderr else ""
    assert f"console on http://127.0.0.1:{port}" in stderr
    assert PASSWORD not in stderr
    # the console stopped with the daemon
    try:
        requests.get(f"{url}/api/status", timeout=2)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("the console still answers after syncd run stopped")
