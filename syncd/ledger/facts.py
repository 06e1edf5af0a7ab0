"""The planner's contract with the ledger: the facts it reads, the answer it writes.

Plain data, no SQL: ``syncd.ledger.intents`` loads these from the rows and writes the
answer back; ``syncd.plan.planner`` decides from them without any I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FileFact:
    """A file row: a path of a library holding a content (times in epoch seconds)."""

    file_id: int
    library: str
    relpath: str
    content_hash: str
    #: "live", "vanished" (waiting delete_grace) or "held" (docs/rules.md, Mass deletes)
    state: str
    first_seen_at: float
    vanished_at: float | None = None
    #: the file's mtime (ns): the bulk lane sends the newest files first (fresh changes first)
    mtime_ns: int = 0


@dataclass(frozen=True, slots=True)
class ItemFact:
    """An item row of the gallery and the contents mapped to it."""

    item_id: int
    contents: frozenset[str]
    cont_sign: str | None
    want_present: bool
    want_brief: str
    want_tags: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Transition:
    """A path whose content changed in this scan, from ``old_hash`` to ``new_hash``."""

    old_hash: str
    #: None when the path holds nothing sendable any more (rejected, skipped)
    new_hash: str | None


@dataclass(frozen=True, slots=True)
class DesiredItem:
    """What one item should be. ``item_id`` None: a new item for ``contents``."""

    item_id: int | None
    contents: frozenset[str]
    present: bool
    brief: str
    tags: tuple[int, ...]
    #: the brief's holder, the file an add reads; None when not present
    source_file_id: int | None
    #: the content whose item's add must land before this item's call (add before delete)
    wait_for_content: str | None


@dataclass(frozen=True, slots=True)
class Move:
    """A vanished file that reappeared at another path: its row goes, its heir takes its age."""

    vanished_file_id: int
    heir_file_id: int
    first_seen_at: float


@dataclass(frozen=True)
class Plan:
    """The planner's answer for one gallery."""

    items: list[DesiredItem]
    moves: list[Move]
    #: vanished file rows whose grace is over: they no longer hold their item
    expired_file_ids: list[int]
