"""`syncd run` as a real subprocess against the local gallery server of the test process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from devkit.imagegen import make_image
from syncd.gallery.server import GalleryServer

#: generous: these are deadlines for convergence, not speed assertions
CONVERGE = 60.0
SETTLE = 0.3
DELETE_GRACE = 1.0


def free_port() -> int:
    """A TCP port free on loopback now (for /metrics and the console)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


def metrics_text(port: int) -> str:
    """The daemon's /metrics page on ``port`` ("" while it is not up)."""
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except requests.ConnectionError:
        return ""


def wait_until(check: Callable[[], bool], timeout: float = CONVERGE, what: str = "") -> None:
    """Poll `check` until it holds; fail the test with `what` when `timeout` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}")


def gallery_paths(server: GalleryServer, gallery: str = "same_hq") -> dict[str, str]:
    """(library/path) -> cont_sign of every live item, from the briefs."""
    params = {"gallery": gallery, "access_token": server.access_token()}
    answer = requests.get(f"{server.url}/_syncd/items", params=params, timeout=30)
    answer.raise_for_status()
    out: dict[str, str] = {}
    for item in answer.json()["items"]:
        brief = json.loads(item["brief"])
        out[f"{brief['lib']}/{brief['path']}"] = item["cont_sign"]
    return out


def calls(server: GalleryServer, gallery: str = "same_hq") -> dict[str, int]:
    """operation -> API calls the gallery received for `gallery`."""
    return {op: n for (g, op), n in server.call_counts().items() if g == gallery and n}


@contextmanager
def tmpfs_at(path: Path) -> Iterator[Path]:
    """A tmpfs mounted at ``path`` (made if missing), unmounted at the end whatever
    happened; the test is skipped, saying why, where this machine cannot mount one."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "syncd-test", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        while os.path.ismount(path):
            subprocess.run(["umount", "-l", str(path)], check=False)


def write_image(path: Path, seed: int, size: tuple[int, int] = (48, 48)) -> Path:
    """A distinct JPEG at `path` (parents made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_image(seed, size))
    return path


@dataclass
class Library:
    name: str
    root: Path
    gallery: str = "same_hq"


@dataclass
class Daemon:
    """One `syncd run` process and its config."""

    tmp: Path
    server: GalleryServer
    libraries: list[Library]
    polling: str = "auto"
    qps: float = 500.0
    settle: float = SETTLE
    metrics_listen: str = ""
    console_listen: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    #: `[health] accept`
    accept: list[str] = field(default_factory=list)
    #: turns the command into the one started (e.g. in a user namespace of its own)
    wrap: Callable[[list[str]], list[str]] | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def config_path(self) -> Path:
        return self.tmp / "config.toml"

    def write_config(self, text: str | None = None) -> None:
        if text is None:
            polling = {"auto": '"auto"', "on": "true", "off": "false"}[self.polling]
            lines = [
                "[api]",
                f'endpoint = "{self.server.url}"',
                'api_key = "test-ak"',
                'secret_key = "test-sk"',
                f"qps = {self.qps}",
                "concurrency = 4",
                "timeout = 10.0",
                "[ledger]",
                f'path = "{self.tmp / "ledger.db"}"',
                "[watch]",
                f"settle = {self.settle}",
                f"delete_grace = {DELETE_GRACE}",
                "rescan_interval = 0",
                f"polling = {polling}",
                "[safety]",
                # these libraries are tiny: one deleted file is a large fraction of them
                "max_delete_fraction = 1.0",
                "[metrics]",
                f'listen = "{self.metrics_listen}"',
                "[console]",
                f'listen = "{self.console_listen}"',
                "[health]",
                f"accept = {json.dumps(self.accept)}",
            ]
            for lib in self.libraries:
                lines += [
                    "[[library]]",
                    f'name = "{lib.name}"',
                    f'root = "{lib.root}"',
                    f'gallery = "{lib.gallery}"',
                ]
            text = "\n".join(lines) + "\n"
        self.config_path.write_text(text)

    def start(self) -> None:
        if not self.config_path.exists():
            self.write_config()
        for lib in self.libraries:
            lib.root.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
        env |= self.extra_env
        n = len(list(self.tmp.glob("daemon-*.log")))
        self.log_path = self.tmp / f"daemon-{n}.log"
        command = [sys.executable, "-m", "syncd.cli", "run", "-c", str(self.config_path)]
        command += self.args
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.wrap(command) if self.wrap else command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = CONVERGE) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("syncd run did not stop on SIGTERM:\n" + self.log()) from None

    def wait_until(
        self, check: Callable[[], bool], timeout: float = CONVERGE, what: str = ""
    ) -> None:
        """`wait_until`, with this daemon's log in the failure."""
        try:
            wait_until(check, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- syncd run log ---\n{self.log()}") from None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthz(self) -> tuple[int, str]:
        """/healthz's status code and body ((0, "") while it does not answer)."""
        host, _, port = self.metrics_listen.rpartition(":")
        try:
            answer = requests.get(f"http://{host}:{port}/healthz", timeout=10)
        except requests.ConnectionError:
            return 0, ""
        return answer.status_code, answer.text

    def status_json(self) -> dict[str, Any]:
        """`syncd status --json` of this config, run now in a process of its own."""
        done = subprocess.run(
            [sys.executable, "-m", "syncd.cli", "status", "--json", "-c", str(self.config_path)],
            capture_output=True, text=True, timeout=CONVERGE,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        document: dict[str, Any] = json.loads(done.stdout)
        return document


@pytest.fixture
def daemon(tmp_path: Path, gallery_server: GalleryServer) -> Iterator[Daemon]:
    """A configured (not started) daemon with one library `photos` at tmp/photos."""
    d = Daemon(tmp_path, gallery_server, [Library("photos", tmp_path / "photos")])
    yield d
    if d.running():
        d.stop()
