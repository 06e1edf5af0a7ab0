"""216681 "item exist": adopt the gallery's item, or wait out a recent delete, never loop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from syncd.sync.adopt import AddAfter, Adopt, NoMatch, decide_adoption

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATENCY = 4 * 3600.0


@dataclass(frozen=True)
class Hit:
    cont_sign: str
    score: float
    brief: str


def test_best_matching_item_is_adopted() -> None:
    hits = [Hit("1,1", 0.5, "x"), Hit("2,2", 0.99, "y"), Hit("3,3", 0.95, "z")]
    assert decide_adoption(hits, "want", {}, NOW, LATENCY) == Adopt("2,2", "y")


def test_item_already_carrying_the_wanted_brief_wins_a_near_tie() -> None:
    hits = [Hit("2,2", 0.99, "other"), Hit("3,3", 0.97, "want")]
    assert decide_adoption(hits, "want", {}, NOW, LATENCY) == Adopt("3,3", "want")


def test_weak_hits_are_not_adopted() -> None:
    assert decide_adoption([Hit("1,1", 0.6, "x")], "want", {}, NOW, LATENCY) == NoMatch()


def test_image_deleted_lately_is_added_again_after_the_latency_window() -> None:
    deleted = NOW - timedelta(hours=1)
    decision = decide_adoption([Hit("1,1", 1.0, "old")], "want", {"1,1": deleted}, NOW, LATENCY)
    assert decision == AddAfter(deleted + timedelta(seconds=LATENCY))


def test_item_deleted_long_ago_is_live_again_and_adopted() -> None:
    deleted = NOW - timedelta(hours=5)
    decision = decide_adoption([Hit("1,1", 1.0, "old")], "want", {"1,1": deleted}, NOW, LATENCY)
    assert decision == Adopt("1,1", "old")


def test_content_deleted_lately_waits_even_when_search_no_longer_shows_it() -> None:
    deleted = NOW - timedelta(minutes=10)
    decision = decide_adoption([], "want", {}, NOW, LATENCY, content_deleted_at=deleted)
    assert decision == AddAfter(deleted + timedelta(seconds=LATENCY))


def test_live_copy_beats_a_ghost_of_the_same_image() -> None:
    hits = [Hit("1,1", 1.0, "ghost"), Hit("2,2", 0.98, "live")]
    decision = decide_adoption(hits, "want", {"1,1": NOW}, NOW, LATENCY)
    assert decision == Adopt("2,2", "live")
