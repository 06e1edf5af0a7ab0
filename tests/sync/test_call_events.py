"""The log of call outcomes: one line per call, a summary every 10 s during a burst, back
to lines when it calms down; the ring the console reads (syncd.sync.events)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from syncd.ledger.queue import Intent
from syncd.sync.events import (
    LINES_PER_WINDOW,
    SUMMARY_WINDOW,
    CallEvent,
    EventRing,
    OutcomeLog,
    events_of,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Timers:
    """The log's timer, run by hand: what is due when the clock says so."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.due: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, action: Callable[[], None]) -> Callable[[], None]:
        entry = (self.clock.now + delay, action)
        self.due.append(entry)
        return lambda: self.due.remove(entry) if entry in self.due else None

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        for entry in sorted(self.due, key=lambda e: e[0]):
            if entry[0] <= self.clock.now and entry in self.due:
                self.due.remove(entry)
                entry[1]()


def intent(path: str, op: str = "add", library: str | None = "photos") -> Intent:
    return Intent(1, "same_hq", op, None, "{}", (), library, path, None, 0)


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    caplog.set_level(logging.INFO, logger="syncd.test-outcomes")

    def lines() -> list[str]:
        out = [r.getMessage() for r in caplog.records if r.name == "syncd.test-outcomes"]
        caplog.clear()
        return out

    return lines


def make_log(clock: Clock, queued: int | None = 5400) -> tuple[OutcomeLog, Timers, EventRing]:
    timers, ring = Timers(clock), EventRing()
    outcomes = OutcomeLog(
        clock,
        lambda gallery: queued,
        logger=logging.getLogger("syncd.test-outcomes"),
        ring=ring,
        schedule=timers,
    )
    return outcomes, timers, ring


def added(clock: Clock, n: int) -> list[CallEvent]:
    return events_of("add", [intent(f"trip/IMG_{n}.jpg")], "added", clock.now)


def test_a_few_calls_are_one_line_each(logged: Callable[[], list[str]]) -> None:
    clock = Clock()
    outcomes, timers, _ = make_log(clock)
    for n in range(3):
        outcomes.tell(added(clock, n))
        clock.now += 1
    assert logged() == [f"library photos: add trip/IMG_{n}.jpg (same_hq): added" for n in range(3)]
    timers.advance(60)
    assert logged() == []  # nothing was left unsaid: no summary


def test_a_burst_becomes_a_summary_every_10_s_and_lines_come_back_when_it_calms(
    logged: Callable[[], list[str]],
) -> None:
    clock = Clock()
    outcomes, timers, _ = make_log(clock)
    for n in range(100):  # 100 adds in 5 s
        outcomes.tell(added(clock, n))
        clock.now += 0.05
    lines = logged()
    assert len(lines) == LINES_PER_WINDOW + 1
    assert lines[-1].startswith(f"more than {LINES_PER_WINDOW} call outcomes in 10 s")

    # the window ends with no call to end it: the timer logs its summary
    timers.advance(SUMMARY_WINDOW)
    assert logged() == [
        "library photos (same_hq): 100 added, 0 failed in the last 10 s; 5400 queued, "
        "about 9 min left at 10.0 items/s"
    ]

    # the burst goes on: no lines at all, one summary per window
    for n in range(30):
        outcomes.tell(added(clock, n))
        outcomes.tell(events_of("add", [intent(f"dup/{n}.jpg")], "adopted", clock.now))
        clock.now += 0.1
    assert logged() == []
    timers.advance(SUMMARY_WINDOW)
    assert logged() == [
        "library photos (same_hq): 30 added, 30 adopted, 0 failed in the last 10 s; "
        "5400 queued, about 15 min left at 6.0 items/s"
    ]

    # a calm window: a few calls, logged one by one again
    clock.now += SUMMARY_WINDOW
    outcomes.tell(added(clock, 1))
    assert logged() == ["library photos: add trip/IMG_1.jpg (same_hq): added"]


def test_verbose_logs_every_call_and_never_summarises(logged: Callable[[], list[str]]) -> None:
    logging.getLogger("syncd.test-outcomes").setLevel(logging.DEBUG)
    try:
        clock = Clock()
        outcomes, timers, _ = make_log(clock)
        for n in range(50):
            outcomes.tell(added(clock, n))
        timers.advance(SUMMARY_WINDOW)
        lines = logged()
    finally:
        logging.getLogger("syncd.test-outcomes").setLevel(logging.NOTSET)
    assert len(lines) == 50
    assert all(line.endswith(": added") for line in lines)


def test_stopping_logs_the_summary_of_the_window_under_way(
    logged: Callable[[], list[str]],
) -> None:
    clock = Clock()
    outcomes, _, _ = make_log(clock, queued=0)
    for n in range(25):
        outcomes.tell(added(clock, n))
    logged()
    outcomes.close()
    assert logged() == ["library photos (same_hq): 25 added, 0 failed in the last 10 s; 0 queued"]


def test_a_batch_delete_names_its_count_and_the_first_paths() -> None:
    intents = [intent(f"old/{n}.jpg", op="delete") for n in range(12)]
    (event,) = events_of("delete", intents, "deleted", 0.0)
    assert event.line() == (
        "library photos: delete 12 items old/0.jpg, old/1.jpg, old/2.jpg, … (same_hq): deleted"
    )


def test_failures_and_retries_say_why_and_when() -> None:
    failed = events_of("add", [intent("a.jpg")], "failed", 0.0, "image too small (10x10 px)")
    later = events_of("delete", [intent("b.jpg", op="delete")], "retrying", 0.0,
                      "error 282000: internal error", retry_in=30.0)  # fmt: skip
    assert failed[0].line() == (
        "library photos: add a.jpg (same_hq): failed: image too small (10x10 px)"
    )
    assert later[0].line() == (
        "library photos: delete b.jpg (same_hq): retrying in 30 s: error 282000: internal error"
    )


def test_a_delete_whose_file_is_gone_names_the_path_its_brief_holds() -> None:
    gone = Intent(7, "same_hq", "delete", "sign", '{"lib":"photos","path":"x/y.jpg"}', (),
                  None, None, None, 0)  # fmt: skip
    assert events_of("delete", [gone], "deleted", 0.0)[0].line() == (
        "library photos: delete x/y.jpg (same_hq): deleted"
    )


def test_the_ring_keeps_the_newest_and_filters_by_library_and_outcome() -> None:
    clock = Clock()
    outcomes, _, ring = make_log(clock)
    outcomes.tell(events_of("add", [intent("a.jpg")], "added", 1.0))
    outcomes.tell(events_of("add", [intent("b.jpg", library="work")], "failed", 2.0, "bad"))
    outcomes.tell(events_of("add", [intent("c.jpg")], "failed", 3.0, "bad"))
    assert [e.paths for e in ring.recent(10)] == [("c.jpg",), ("b.jpg",), ("a.jpg",)]
    assert [e.paths for e in ring.recent(1)] == [("c.jpg",)]
    assert [e.paths for e in ring.recent(10, library="photos")] == [("c.jpg",), ("a.jpg",)]
    assert [e.paths for e in ring.recent(10, outcome="failed")] == [("c.jpg",), ("b.jpg",)]
    small = EventRing(size=2)
    for event in ring.recent(10):
        small.add(event)
    assert [e.paths for e in small.recent(10)] == [("a.jpg",), ("b.jpg",)]
