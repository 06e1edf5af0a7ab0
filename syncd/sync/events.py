"""Call outcomes: one log line per outcome, a summary every 10 s during a burst, and a ring
of the recent ones for the console (``recent``).

The rule of the log (the README's Logging part says the same): each outcome of a call is
one INFO line (a failure a WARNING) naming the library, the operation, the path(s), the
gallery and the result, e.g. ``library photos: add trip/IMG_1.jpg (same_hq): added``.
Time is cut in windows of ``SUMMARY_WINDOW`` seconds. Once a window has had
``LINES_PER_WINDOW`` lines, the rest of its outcomes are only counted, and when it ends one
summary line per library says what the whole window did, what is still queued and how long
that takes at the window's pace. The next window is quiet too (summaries only) while the
burst goes on; the first window with no more than ``LINES_PER_WINDOW`` outcomes brings the
per-call lines back. With ``-v`` (DEBUG) every outcome is a line, never summarised.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from syncd.ledger.queue import Intent
from syncd.paths.relpath import printable_relpath

log = logging.getLogger("syncd.sync")

#: seconds of one window of the burst rule
SUMMARY_WINDOW = 10.0
#: outcome lines a window may log before its outcomes are summarised instead
LINES_PER_WINDOW = 20
#: outcomes the ring keeps for the console (the oldest go first)
RING_SIZE = 1000
#: paths a line names of a batch (a delete of many items); the rest are counted
SHOWN_PATHS = 3

#: what a call came to, in the order summaries list them
OUTCOMES = ("added", "adopted", "updated", "deleted", "retrying", "failed")


@dataclass(frozen=True)
class CallEvent:
    """The outcome of one call (or of one library's share of a batch delete)."""

    #: seconds since the epoch
    at: float
    #: the library the items' files belong to (None: no file names them any more)
    library: str | None
    gallery: str
    #: "add", "update" or "delete"
    op: str
    #: printable relative paths, at most SHOWN_PATHS of the ``count`` items
    paths: tuple[str, ...]
    #: items the call was about (a batch delete: many)
    count: int
    #: one of OUTCOMES
    outcome: str
    #: why it failed or is retried (None otherwise)
    reason: str | None = None
    #: seconds until it is tried again (retrying only; None: when the account allows)
    retry_in: float | None = None

    @property
    def result(self) -> str:
        """The outcome in words: ``added``, ``failed: <reason>``, ``retrying in 30 s: …``."""
        if self.outcome == "failed":
            return f"failed: {self.reason}" if self.reason else "failed"
        if self.outcome == "retrying":
            if self.retry_in is None:
                when = "retrying later"
            elif self.retry_in < 1:
                when = "retrying now"
            else:
                when = f"retrying in {duration(self.retry_in)}"
            return f"{when}: {self.reason}" if self.reason else when
        return self.outcome

    def line(self) -> str:
        """The log line: ``library photos: add trip/IMG_1.jpg (same_hq): added``."""
        who = f"library {self.library}" if self.library else f"gallery {self.gallery}"
        return f"{who}: {self.op} {self.target()} ({self.gallery}): {self.result}"

    def target(self) -> str:
        """What the call was about: a path, or a count and the first few paths."""
        if self.count == 1 and self.paths:
            return self.paths[0]
        what = "1 item" if self.count == 1 else f"{self.count} items"
        if not self.paths:
            return what
        more = ", …" if self.count > len(self.paths) else ""
        return f"{what} {', '.join(self.paths)}{more}"


def events_of(
    op: str,
    intents: Sequence[Intent],
    outcome: str,
    at: float,
    reason: str | None = None,
    retry_in: float | None = None,
) -> list[CallEvent]:
    """The events of one call about ``intents``: one per library they belong to."""
    by_library: dict[str | None, list[str]] = {}
    counts: Counter[str | None] = Counter()
    gallery = intents[0].gallery if intents else ""
    for intent in intents:
        library, path = _where(intent)
        counts[library] += 1
        shown = by_library.setdefault(library, [])
        if path is not None and len(shown) < SHOWN_PATHS:
            shown.append(path)
    return [
        CallEvent(
            at, library, gallery, op, tuple(by_library[library]), n, outcome, reason, retry_in
        )  # fmt: skip
        for library, n in counts.items()
    ]


def _where(intent: Intent) -> tuple[str | None, str | None]:
    """The library and printable path of an intent: its file's, else its brief's."""
    if intent.library and intent.relpath:
        return intent.library, printable_relpath(intent.relpath)
    try:
        brief = json.loads(intent.brief)
    except ValueError:
        return intent.library, None
    if not isinstance(brief, dict):
        return intent.library, None
    library, path = brief.get("lib"), brief.get("path")
    return (
        library if isinstance(library, str) else intent.library,
        printable_relpath(path) if isinstance(path, str) else None,
    )


def duration(seconds: float) -> str:
    """``seconds`` for people: ``40 s``, ``9 min``, ``2 h 5 min``."""
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


# -- the ring for the console ------------------------------------------------------------


class EventRing:
    """The last ``size`` call outcomes of this process (thread-safe)."""

    def __init__(self, size: int = RING_SIZE) -> None:
        self._events: deque[CallEvent] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, event: CallEvent) -> None:
        with self._lock:
            self._events.append(event)

    def recent(
        self, limit: int = 50, library: str | None = None, outcome: str | None = None
    ) -> list[CallEvent]:
        """Up to ``limit`` outcomes, newest first; only ``library``'s, only ``outcome``."""
        with self._lock:
            events = list(self._events)
        out: list[CallEvent] = []
        for event in reversed(events):
            if len(out) >= limit:
                break
            if library is not None and event.library != library:
                continue
            if outcome is not None and event.outcome != outcome:
                continue
            out.append(event)
        return out


#: the outcomes of this process's sync workers
RING = EventRing()


def recent(
    limit: int = 50, library: str | None = None, outcome: str | None = None
) -> list[CallEvent]:
    """This process's last call outcomes, newest first (at most ``limit``; only those of
    ``library``, only those whose ``outcome`` is one of OUTCOMES, when given)."""
    return RING.recent(limit, library, outcome)


# -- the log -----------------------------------------------------------------------------


def _timer(delay: float, action: Callable[[], None]) -> Callable[[], None]:
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.start()
    return timer.cancel


class OutcomeLog:
    """Logs call outcomes by the burst rule (module docstring) and keeps them in ``ring``.

    ``queued(gallery)``: intents still queued for a gallery (None: unknown), for the
    summaries. ``schedule(delay_s, action)`` runs ``action`` later and returns a cancel;
    a window's summary is logged by it when no outcome comes to end the window.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        queued: Callable[[str], int | None] = lambda gallery: None,
        *,
        logger: logging.Logger = log,
        ring: EventRing = RING,
        schedule: Callable[[float, Callable[[], None]], Callable[[], None]] = _timer,
    ) -> None:
        self._clock = clock
        self.queued = queued
        self._log = logger
        self._ring = ring
        self._schedule = schedule
        self._lock = threading.Lock()
        self._start: float | None = None
        self._lines = 0
        self._quiet = False
        #: (library, gallery) -> outcome -> items, this window
        self._counts: dict[tuple[str | None, str], Counter[str]] = {}
        self._cancel: Callable[[], None] | None = None

    def tell(self, events: Sequence[CallEvent]) -> None:
        """Log ``events`` (one line each, or counted for the window's summary)."""
        verbose = self._log.isEnabledFor(logging.DEBUG)
        now = self._clock()
        lines: list[CallEvent] = []
        quieted = False
        with self._lock:
            summaries = self._roll(now)
            if self._start is None:
                self._start = now
            for event in events:
                self._ring.add(event)
                counts = self._counts.setdefault((event.library, event.gallery), Counter())
                counts[event.outcome] += event.count
                self._lines += 1
                if verbose or (not self._quiet and self._lines <= LINES_PER_WINDOW):
                    lines.append(event)
                elif not self._quiet:
                    self._quiet = quieted = True
            if self._quiet and self._cancel is None:
                self._cancel = self._schedule(self._start + SUMMARY_WINDOW - now, self.tick)
        self._write(summaries)
        for event in lines:
            level = logging.WARNING if event.outcome == "failed" else logging.INFO
            self._log.log(level, "%s", event.line(), extra=_fields(event))
        if quieted:
            self._log.info(
                "more than %d call outcomes in %.0f s: a summary every %.0f s until fewer come",
                LINES_PER_WINDOW, SUMMARY_WINDOW, SUMMARY_WINDOW,
            )  # fmt: skip

    def tick(self) -> None:
        """End the window if its time is over (logs its summary; the timer calls this)."""
        now = self._clock()
        with self._lock:
            self._cancel = None
            summaries = self._roll(now)
            if self._quiet and self._start is not None and self._cancel is None:
                self._cancel = self._schedule(max(0.0, self._start + SUMMARY_WINDOW - now),
                                              self.tick)  # fmt: skip
        self._write(summaries)

    def close(self) -> None:
        """Log the summary of the window under way, if it has one (the workers stop)."""
        with self._lock:
            if self._cancel is not None:
                self._cancel()
                self._cancel = None
            summaries = self._summaries(SUMMARY_WINDOW) if self._quiet else []
            self._start, self._lines, self._quiet, self._counts = None, 0, False, {}
        self._write(summaries)

    def _roll(self, now: float) -> list[tuple[str | None, str, Counter[str], float]]:
        """Close the window if it is over: its summaries when it was quiet (under the lock)."""
        if self._start is None or now < self._start + SUMMARY_WINDOW:
            return []
        summaries = self._summaries(SUMMARY_WINDOW) if self._quiet else []
        # quiet stays while the burst goes on; a window with no outcome at all ends it
        stays = self._lines > LINES_PER_WINDOW and now < self._start + 2 * SUMMARY_WINDOW
        self._start = self._start + SUMMARY_WINDOW if stays else None
        self._lines, self._quiet, self._counts = 0, stays, {}
        return summaries

    def _summaries(self, seconds: float) -> list[tuple[str | None, str, Counter[str], float]]:
        items_of: Counter[str] = Counter()
        for (_, gallery), counts in self._counts.items():
            items_of[gallery] += sum(counts.values())
        return [
            (library, gallery, counts, items_of[gallery] / seconds)
            for (library, gallery), counts in self._counts.items()
        ]

    def _write(self, summaries: list[tuple[str | None, str, Counter[str], float]]) -> None:
        queued: dict[str, int | None] = {}
        for library, gallery, counts, pace in summaries:
            if gallery not in queued:
                try:
                    queued[gallery] = self.queued(gallery)
                except Exception:  # the summary is worth logging without its queue
                    queued[gallery] = None
            self._log.info("%s", summary_line(library, gallery, counts, pace, queued[gallery]))


def summary_line(
    library: str | None,
    gallery: str,
    counts: Counter[str],
    pace: float,
    queued: int | None,
) -> str:
    """``library photos (same_hq): 180 added, 2 adopted, 0 failed in the last 10 s; 5400
    queued, about 5 min left at 18.2 items/s``; ``pace`` in items per second."""
    who = f"library {library}" if library else f"gallery {gallery}"
    done = [f"{counts[o]} {o}" for o in OUTCOMES if counts[o] or o == "failed"]
    text = f"{who} ({gallery}): {', '.join(done)} in the last {SUMMARY_WINDOW:.0f} s"
    if queued is not None:
        text += f"; {queued} queued"
        if queued and pace > 0:
            text += f", about {duration(queued / pace)} left at {pace:.1f} items/s"
    return text


def _fields(event: CallEvent) -> dict[str, object]:
    """The event's fields for JSON log lines (``extra=``)."""
    fields: dict[str, object] = {
        "gallery": event.gallery,
        "op": event.op,
        "outcome": event.outcome,
        "items": event.count,
    }
    if event.library is not None:
        fields["library"] = event.library
    if event.paths:
        fields["path"] = event.paths[0]
    if event.reason is not None:
        fields["reason"] = event.reason
    return fields
