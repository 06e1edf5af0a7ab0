"""What every worker must respect before a call: the account pause (quota) and the galleries
stopped by a setup error (docs/rules.md, Error classes). Kept in memory for speed and in the
ledger's settings so ``status`` and the next process see the same state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from syncd.errors import ApiError
from syncd.ledger.schema import Ledger
from syncd.ledger.settings import (
    GALLERY_STOP_PREFIX,
    PAUSE_KEY,
    delete_setting,
    get_setting,
    put_setting,
    settings_with_prefix,
)
from syncd.pauses import AccountPause, GalleryStop, pause_for_quota, stop_for_setup_error

log = logging.getLogger("syncd.sync")

#: seconds between two looks in the ledger for a pause or stop lifted by `syncd retry`
REFRESH_AFTER = 30.0


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class AccountState:
    """The pause and the stopped galleries of the one account the ledger syncs to.

    ``retry_stops``: whether a stopped gallery is tried again after its ``retry_at`` (the
    service) or stays stopped for this process's life (one ``reconcile`` run).
    """

    def __init__(
        self, ledger: Ledger, clock: Callable[[], float], retry_stops: bool = True
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._retry_stops = retry_stops
        self._lock = threading.Lock()
        self._pause: AccountPause | None = None
        self._stops: dict[str, GalleryStop] = {}
        #: stops recorded before this process started: cleared by the first call that works
        self._inherited: set[str] = set()
        self._loaded_at = float("-inf")
        #: stops recorded since then are another host's: they hold here too
        self._started = clock()

    def refresh(self, max_age: float = REFRESH_AFTER) -> None:
        """While calls are held back, look in the ledger at most every ``max_age`` seconds
        whether another process (``syncd retry``) lifted the pause or a gallery's stop."""
        now = self._clock()
        with self._lock:
            held = self._pause is not None or bool(self._stops)
            if not held or now - self._loaded_at < max_age:
                return
            self._loaded_at = now
        with self._ledger.transaction() as session:
            paused = get_setting(session, PAUSE_KEY) is not None
            stopped = set(settings_with_prefix(session, GALLERY_STOP_PREFIX))
        with self._lock:
            if not paused and self._pause is not None:
                self._pause = None
                log.info("the quota pause was lifted")
            for gallery in [g for g in self._stops if GALLERY_STOP_PREFIX + g not in stopped]:
                del self._stops[gallery]
                log.info("the stop of gallery %s was lifted", gallery)

    def follow(self) -> None:
        """Take up what other hosts recorded in the ledger: a quota pause, a
        gallery stopped since this process started, a pause or stop lifted. The heartbeat
        calls it every few seconds, so a 17 seen by one host pauses all."""
        read_at = self._clock()
        with self._ledger.transaction() as session:
            text = get_setting(session, PAUSE_KEY)
            stopped = settings_with_prefix(session, GALLERY_STOP_PREFIX)
        now = self._clock()
        pause = None
        if text is not None:
            try:
                pause = AccountPause.from_json(text)
            except (ValueError, KeyError, TypeError):
                pause = None
        stops: dict[str, GalleryStop] = {}
        for key, value in stopped.items():
            try:
                stops[key.removeprefix(GALLERY_STOP_PREFIX)] = GalleryStop.from_json(value)
            except (ValueError, KeyError, TypeError):
                continue
        with self._lock:
            self._loaded_at = now
            if pause is not None and pause.active(_utc(now)) and self._pause != pause:
                if self._pause is None:
                    log.warning("calls paused (recorded by another host): %s", pause.describe())
                self._pause = pause
            elif pause is None and self._pause is not None and (
                self._pause.since.timestamp() < read_at  # not one recorded while we read
            ):
                self._pause = None
                log.info("the quota pause was lifted")
            for gallery, stop in stops.items():
                fresh = stop.since.timestamp() >= self._started
                if gallery not in self._stops and gallery not in self._inherited and fresh:
                    self._stops[gallery] = stop
                    log.error("%s (recorded by another host)", stop.advice)
            for gallery in [g for g in self._stops if g not in stops]:
                del self._stops[gallery]
                log.info("the stop of gallery %s was lifted", gallery)

    def load(self) -> None:
        """Read the pause and the stops the ledger has (a previous run's)."""
        with self._ledger.transaction() as session:
            text = get_setting(session, PAUSE_KEY)
            stopped = settings_with_prefix(session, GALLERY_STOP_PREFIX)
        self._inherited = {key.removeprefix(GALLERY_STOP_PREFIX) for key in stopped}
        pause = None
        if text is not None:
            try:
                pause = AccountPause.from_json(text)
            except (ValueError, KeyError, TypeError):
                log.warning("the ledger's account pause record is unreadable; ignoring it")
        with self._lock:
            self._pause = pause
            self._loaded_at = self._clock()

    # -- reading ------------------------------------------------------------------------

    def pause(self) -> AccountPause | None:
        """The pause in force now, if any."""
        with self._lock:
            pause = self._pause
        if pause is not None and pause.active(_utc(self._clock())):
            return pause
        return None

    def stops(self) -> dict[str, GalleryStop]:
        """gallery -> the stop this process recorded for it."""
        with self._lock:
            return dict(self._stops)

    def open_galleries(self, galleries: Sequence[str]) -> list[str]:
        """The galleries of ``galleries`` that may be called now (none while paused)."""
        if self.pause() is not None:
            return []
        now = _utc(self._clock())
        with self._lock:
            return [
                g
                for g in galleries
                if g not in self._stops or (self._retry_stops and self._stops[g].retry_at <= now)
            ]

    def next_change(self) -> float | None:
        """Seconds since the epoch when the pause ends or a stopped gallery may be retried."""
        times: list[float] = []
        pause = self.pause()
        if pause is not None:
            times.append(pause.until.timestamp())
        if self._retry_stops:
            with self._lock:
                times += [stop.retry_at.timestamp() for stop in self._stops.values()]
        return min(times) if times else None

    # -- changes ------------------------------------------------------------------------

    def on_quota(self, error: ApiError) -> AccountPause:
        """A 17/19 answer: pause every call of the account and record it."""
        now = self._clock()
        pause = pause_for_quota(error, _utc(now))
        with self._lock:
            self._pause = pause
        with self._ledger.transaction() as session:
            put_setting(session, PAUSE_KEY, pause.to_json(), now)
        log.warning("%s", pause.describe())
        return pause

    def on_setup_error(self, gallery: str, error: ApiError) -> GalleryStop:
        """A setup error (or a refused fresh token): stop calling ``gallery`` and record it."""
        now = self._clock()
        stop = stop_for_setup_error(gallery, error, _utc(now))
        with self._lock:
            first = gallery not in self._stops
            self._stops[gallery] = stop
        with self._ledger.transaction() as session:
            put_setting(session, GALLERY_STOP_PREFIX + gallery, stop.to_json(), now)
        if first:
            log.error("%s", stop.advice)
        return stop

    def on_success(self, gallery: str) -> None:
        """A call to ``gallery`` worked: a lapsed pause and the gallery's stop are over."""
        with self._lock:
            pause = self._pause
            stopped = gallery in self._stops or gallery in self._inherited
            if not stopped and pause is None:
                return
            self._stops.pop(gallery, None)
            self._inherited.discard(gallery)
            if pause is not None and not pause.active(_utc(self._clock())):
                self._pause = None
            else:
                pause = None
        with self._ledger.transaction() as session:
            if stopped:
                delete_setting(session, GALLERY_STOP_PREFIX + gallery)
                log.info("gallery %s answers again", gallery)
            if pause is not None:
                delete_setting(session, PAUSE_KEY)
                log.info("calls resumed after the quota pause")
