"""The status document as the console serves it: read now while that is quick, else the
latest snapshot with a fresh one read in the background."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger("syncd.console")


class StatusCache:
    """The status document, read again on each request while that is quick; once a read
    takes longer than ``FRESH_SECONDS`` (a ledger of a million files), requests get the
    latest snapshot and a background thread reads a new one when it is older than
    ``REFRESH_FACTOR`` times the last read (at least ``MIN_AGE`` seconds): the console
    answers at once and spends at most a small share of a core on counting."""

    FRESH_SECONDS: Final = 0.05
    REFRESH_FACTOR: Final = 5.0
    MIN_AGE: Final = 5.0

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._snapshot: dict[str, Any] | None = None
        self._taken_at = 0.0
        self._cost = 0.0
        self._refreshing: threading.Thread | None = None

    def get(self) -> dict[str, Any]:
        """The document: fresh, or the latest snapshot while a new one is read."""
        with self._lock:
            snapshot, cost, age = self._snapshot, self._cost, time.monotonic() - self._taken_at
            if snapshot is not None and cost > self.FRESH_SECONDS:
                if age > max(self.MIN_AGE, self.REFRESH_FACTOR * cost) and self._refreshing is None:
                    self._refreshing = threading.Thread(
                        target=self._refresh, name="syncd-console-status", daemon=True
                    )
                    self._refreshing.start()
                return snapshot
        return self._take()

    def warm_up(self) -> None:
        """Read once in the background (a console just started), so the first request
        finds the modules imported and the ledger's pages cached. That read is not kept:
        the service may change the ledger a lot while it starts, and the first answer must
        be what the ledger holds when it is asked."""
        with self._lock:
            if self._refreshing is None:
                self._refreshing = threading.Thread(
                    target=self._refresh, args=(False,), name="syncd-console-status", daemon=True
                )
                self._refreshing.start()

    def _take(self) -> dict[str, Any]:
        started = time.monotonic()
        document = self._read()
        now = time.monotonic()
        with self._lock:
            self._snapshot, self._taken_at, self._cost = document, now, now - started
        return document

    def _refresh(self, keep: bool = True) -> None:
        try:
            if keep:
                self._take()
            else:
                self._read()
        except Exception:  # the next request tries again; the page keeps the last snapshot
            log.exception("console: reading the status failed")
        finally:
            with self._lock:
                self._refreshing = None

    def invalidate(self) -> None:
        """Something changed the ledger here (retry, release): the next request reads anew
        (in the background when reads are slow)."""
        with self._lock:
            self._taken_at = -math.inf

    def close(self) -> None:
        """Wait for a background read in progress."""
        with self._lock:
            thread = self._refreshing
        if thread is not None:
            thread.join()
