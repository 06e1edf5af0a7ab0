"""Watching survives the kernel's inotify limits, reached at start or at any time later: the
root moves to polling within seconds, the log says so once naming the sysctl to raise, what
inotify could not watch is still looked at, a queue overflow rescans the root, and a reload
brings inotify back once the limit allows.

A real watchdog observer runs in a child process on real folders. The limits are lowered in
a user namespace of the child's own (tests/watch/userns.py), never on the machine.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .userns import in_user_namespace, user_namespace_problem

CHILD = str(Path(__file__).with_name("watcher_child.py"))
SETTLE = 0.3
POLL = 0.5
#: deadlines for things to happen, not speed assertions
GENEROUS = 30.0


class Child:
    """The watcher process and what it printed, line by line."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.seen: list[dict[str, Any]] = []
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(json.loads(line))

    def expect(
        self, check: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """The first line from now on for which `check` holds; fails after `timeout` s."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if check(line):
                return line
        raise AssertionError(f"no {what} within {timeout:.0f} s; the watcher said:\n{self.said()}")

    def quiet(self, seconds: float) -> None:
        """Read on until nothing has been said for `seconds`."""
        while True:
            try:
                self.seen.append(self._lines.get(timeout=seconds))
            except queue.Empty:
                return

    def logs(self, level: str = "WARNING") -> list[str]:
        """Log messages at `level` said so far."""
        return [line["log"][2] for line in self.seen if "log" in line and line["log"][0] == level]

    def said(self) -> str:
        stderr = ""
        if self.proc.poll() is not None and self.proc.stderr is not None:
            stderr = self.proc.stderr.read()
        return "\n".join(json.dumps(line) for line in self.seen) + stderr

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def watcher(tmp_path: Path) -> Iterator[Callable[..., Child]]:
    """Start the watcher on tmp/lib, in a user namespace with the inotify limits given."""
    started: list[Child] = []

    def start(*, watches: int | None = None, instances: int | None = None) -> Child:
        command = [sys.executable, CHILD, str(tmp_path / "lib"), str(SETTLE), str(POLL)]
        if watches is not None or instances is not None:
            if problem := user_namespace_problem():
                pytest.skip(problem)
            command = in_user_namespace(command, watches=watches, instances=instances)
        child = Child(command)
        started.append(child)
        return child

    (tmp_path / "lib").mkdir()
    yield start
    for child in started:
        child.close()


def reports(rel: str) -> Callable[[dict[str, Any]], bool]:
    """Whether a line is a batch that hands out `rel` (the path, a folder above it, or the
    whole library)."""

    def check(line: dict[str, Any]) -> bool:
        for _library, full_rescan, paths in line.get("batch", []):
            if full_rescan or any(rel == p or rel.startswith(p + "/") for p in paths):
                return True
        return False

    return check


def naming_sysctl(messages: list[str]) -> list[str]:
    return [m for m in messages if "sysctl " in m]


def test_watch_limit_reached_mid_run_polls_the_root_and_sees_files_in_new_folders(
    watcher: Callable[..., Child], tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    for name in ("a", "b"):
        (root / name).mkdir()
    child = watcher(watches=8)  # the root and its 2 folders take 3: 5 are left
    child.expect(lambda line: line.get("mode") == "inotify", GENEROUS, "a watch with inotify")

    deep = root / "new"
    for depth in range(12):  # a tree grows past the limit while syncd runs
        deep = deep / f"d{depth}" if depth else deep
        deep.mkdir()
    polled = child.expect(
        lambda line: line.get("mode") == "polling", GENEROUS, "the move to polling"
    )
    assert "inotify watch limit reached" in polled["reason"]
    assert "max_inotify_watches" in polled["reason"] or "max_user_watches" in polled["reason"]

    child.quiet(4 * (SETTLE + POLL))  # what was looked at on the move is handed out
    (deep / "x.jpg").write_bytes(b"a file in a folder inotify never watched")
    rel = deep.relative_to(root).as_posix() + "/x.jpg"
    child.expect(reports(rel), SETTLE + POLL + GENEROUS, f"{rel} handed out to scan")

    warnings = child.logs("WARNING")
    assert len(naming_sysctl(warnings)) == 1, warnings
    (line,) = naming_sysctl(warnings)
    assert line.startswith("library lib: inotify watch limit reached (")
    assert f"polling {root} every {POLL:g} s" in line
    assert "raise it with `sysctl " in line
    # watchdog's own line per folder it could not watch is kept out of the log
    assert not [m for m in child.logs("WARNING") if "Unable to watch" in m]

    # a reload tries inotify again: once the limit allows it, the root is watched again
    shutil.rmtree(root / "new")
    child.send("retry")
    child.expect(lambda line: line.get("mode") == "inotify", GENEROUS, "inotify again")
    (root / "a" / "back.jpg").write_bytes(b"seen by inotify")
    child.expect(reports("a/back.jpg"), GENEROUS, "a/back.jpg handed out")


def test_instance_limit_at_start_polls_and_says_which_sysctl(
    watcher: Callable[..., Child], tmp_path: Path
) -> None:
    child = watcher(instances=0)
    polled = child.expect(lambda line: "mode" in line, GENEROUS, "the first watch")
    assert polled["mode"] == "polling"
    assert "inotify instance limit reached" in polled["reason"]
    (tmp_path / "lib" / "y.jpg").write_bytes(b"seen by polling")
    child.expect(reports("y.jpg"), SETTLE + POLL + GENEROUS, "y.jpg handed out")
    warnings = naming_sysctl(child.logs("WARNING"))
    assert len(warnings) == 1 and "max_inotify_instances" in warnings[0], child.said()


def test_kernel_queue_overflow_rescans_the_root_and_names_the_sysctl(
    watcher: Callable[..., Child], tmp_path: Path
) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 200_000:
        pytest.skip(f"fs.inotify.max_queued_events = {limit}: overflowing it takes too long")
    burst = tmp_path / "lib" / "burst"
    burst.mkdir()
    child = watcher()
    child.expect(lambda line: line.get("mode") == "inotify", GENEROUS, "a watch with inotify")
    # a stopped process reads nothing: the kernel's queue fills up and overflows
    os.kill(child.proc.pid, signal.SIGSTOP)
    try:
        for n in range(limit // 2 + 2000):  # a create and a close-write each
            os.close(os.open(burst / f".part-{n}", os.O_CREAT | os.O_WRONLY, 0o644))
    finally:
        os.kill(child.proc.pid, signal.SIGCONT)
    child.expect(lambda line: line.get("rescan") == "inotify queue overflow", GENEROUS, "a rescan")
    child.expect(lambda line: any(look[1] for look in line.get("batch", [])), GENEROUS,
                 "the full rescan handed out")  # fmt: skip
    warnings = naming_sysctl(child.logs("WARNING"))
    assert len(warnings) == 1 and "fs.inotify.max_queued_events" in warnings[0], child.said()
    assert not [m for m in child.logs("WARNING") if "Inotify queue overflowed" in m]
    # one overflow is not a reason to poll: the root stays watched
    assert [line["mode"] for line in child.seen if "mode" in line] == ["inotify"]
