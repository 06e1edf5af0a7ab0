"""`syncd gallery serve` runs the server until SIGTERM and exits 0."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from syncd.api.baidu.galleries import GALLERIES, TOKEN_PATH

from .helpers import API_KEY, SECRET_KEY, b64

MakeImage = Callable[..., bytes]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_health(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited early"
        try:
            if requests.get(url + "/_syncd/health", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError("the server did not come up within 30 s")


def test_gallery_serve_answers_then_exits_0_on_sigterm(
    tmp_path: Path, make_image: MakeImage
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "syncd.cli",
            "-v",
            "gallery",
            "serve",
            "--port",
            str(port),
            "--data",
            str(tmp_path / "data"),
            "--api-key",
            API_KEY,
            "--secret-key",
            SECRET_KEY,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_health(url, process)
        token = requests.get(
            url + TOKEN_PATH,
            params={
                "grant_type": "client_credentials",
                "client_id": API_KEY,
                "client_secret": SECRET_KEY,
            },
            timeout=10,
        ).json()["access_token"]
        answer = requests.post(
            url + GALLERIES["same_hq"].path("add"),
            params={"access_token": token},
            data={"image": b64(make_image(1)), "brief": "from the cli test"},
            timeout=10,
        ).json()
        assert "cont_sign" in answer, answer
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr.decode(errors="replace")
    log = stderr.decode(errors="replace")
    assert f"serving at {url}" in log
    assert "access_token=***" in log
    assert token not in log and SECRET_KEY not in log
    assert (tmp_path / "data" / "gallery.db").is_file()
