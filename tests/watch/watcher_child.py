"""A real LibraryWatcher feeding a real SettleAggregator in a process of its own (so a test
can run it in a user namespace with lower inotify limits, or stop it with SIGSTOP).

``python watcher_child.py ROOT SETTLE POLL_INTERVAL`` prints one JSON object per line:
``{"mode": ..., "reason": ...}`` when the root's watch changes (and first), ``{"batch":
[[library, full_rescan, [paths]], ...]}`` per settled batch, ``{"rescan": reason}`` when the
watcher asks for one, ``{"log": [level, logger, message]}`` per log record at INFO and up.
It reads commands on stdin: ``retry`` (as a config reload does), ``quit``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading

from syncd.paths.filters import WalkFilter
from syncd.watch.aggregator import SettleAggregator, WatchRoot, library_path_filter
from syncd.watch.observer import LibraryWatcher

LIBRARY = "lib"
_out = threading.Lock()


def say(**what: object) -> None:
    with _out:
        sys.stdout.write(json.dumps(what) + "\n")
        sys.stdout.flush()


class _Lines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        say(log=[record.levelname, record.name, record.getMessage()])


def main(root: str, settle: float, poll_interval: float) -> None:
    logging.getLogger().addHandler(_Lines(logging.INFO))
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("watchdog").setLevel(logging.WARNING)  # as the service sets it
    accept = library_path_filter(WalkFilter(include=["*.jpg"], ignore=(".*",)))
    agg = SettleAggregator(settle, [WatchRoot(LIBRARY, root, accept)])

    def rescan(library: str, why: str) -> None:
        say(rescan=why)
        agg.request_rescan(library)

    watcher = LibraryWatcher(agg.touch, rescan, poll_interval=poll_interval)
    watcher.watch(LIBRARY, root)
    stop = threading.Event()
    shown: list[object] = []

    def show_mode() -> None:
        state = watcher.states()[LIBRARY]
        if [state.mode, state.reason] != shown:
            shown[:] = [state.mode, state.reason]
            say(mode=state.mode, reason=state.reason)

    def supervise() -> None:
        while not stop.is_set():
            watcher.wait_for_trouble(1.0)
            watcher.supervise()
            show_mode()

    def batches() -> None:
        while not stop.is_set():
            batch = agg.wait_batch(0.5)
            if batch:
                say(batch=[[look.library, look.full_rescan, list(look.paths)] for look in batch])

    show_mode()
    threads = [threading.Thread(target=f, daemon=True) for f in (supervise, batches)]
    for thread in threads:
        thread.start()
    for line in sys.stdin:
        command = line.strip()
        if command == "retry":
            watcher.retry_inotify()
            show_mode()
        elif command == "quit":
            break
    stop.set()
    watcher.close()
    agg.close()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))
