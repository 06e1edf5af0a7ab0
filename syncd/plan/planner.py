"""The planner: disk state -> what the gallery should hold (docs/rules.md, Keeping the
gallery in step).

A pure function of ledger facts. It takes the files of some contents of one gallery and
the items that hold those contents, and says, per item: should the gallery hold it, with
which brief and tags, read from which file, and whether its call must wait for another
item's add. It never touches the database or the disk; ``syncd.plan.driver`` loads
the facts through the ledger and writes the answer.

Rules it implements:
- items are keyed by content; copies share one item whose brief names the oldest-known
  copy (first seen earliest; ties by library, then path);
- a vanished file keeps its item (and its place as the brief's holder) for ``delete_grace``
  seconds; after that its row expires;
- a vanished file whose content showed up at a new path within ``delete_grace`` of the
  vanish is a move: the new path inherits the old one's seniority, so a rename costs one
  update of the brief, never a delete and an add;
- a content change at a path adds the new content first: the old item's update or delete
  waits for the new item's add;
- an item not yet in the gallery is added only from a live file.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from syncd.api.baidu.brief import make_brief
from syncd.api.baidu.limits import MAX_BRIEF_BYTES
from syncd.config import TagRule
from syncd.ledger.facts import DesiredItem, FileFact, ItemFact, Move, Plan, Transition
from syncd.paths.filters import PathMatcher
from syncd.paths.states import FILE_LIVE, FILE_VANISHED


def plan_gallery(
    touched: Iterable[str],
    items: Sequence[ItemFact],
    files: Sequence[FileFact],
    transitions: Sequence[Transition],
    rules: Mapping[str, Sequence[TagRule]],
    now: float,
    delete_grace: float,
) -> Plan:
    """Decide the items of one gallery that hold the ``touched`` contents.

    ``items`` must hold every item mapped from a touched content, ``files`` every file row
    (any state) of every content of those items and of the touched contents. ``rules``
    maps a library name to its tag rules; ``now`` and ``delete_grace`` are in seconds.
    """
    by_content: dict[str, list[FileFact]] = defaultdict(list)
    for file in files:
        by_content[file.content_hash].append(file)
    owner: dict[str, ItemFact] = {}
    for fact in items:
        for content in fact.contents:
            owner[content] = fact
    waits = _waits(transitions)

    groups: list[tuple[ItemFact | None, frozenset[str]]] = [(i, i.contents) for i in items]
    groups += [(None, frozenset((c,))) for c in sorted(set(touched)) if c not in owner]

    desired: list[DesiredItem] = []
    moves: list[Move] = []
    expired: list[int] = []
    for item, contents in groups:
        group = [f for c in sorted(contents) for f in by_content.get(c, ())]
        kept, group_moves, group_expired = _settle_vanished(group, now, delete_grace)
        moves += group_moves
        expired += group_expired
        seniority = {m.heir_file_id: m.first_seen_at for m in group_moves}
        in_gallery = item is not None and item.cont_sign is not None
        candidates = [f for f in kept if f.state == FILE_LIVE or (in_gallery and f.state != FILE_LIVE)]
        wait = next((waits[c] for c in sorted(contents) if c in waits), None)
        wait = wait if wait not in contents else None
        if not candidates:
            if item is not None:
                desired.append(
                    DesiredItem(
                        item.item_id, contents, False, item.want_brief, item.want_tags, None, wait
                    )
                )
            continue
        holder = min(
            candidates,
            key=lambda f: (seniority.get(f.file_id, f.first_seen_at), f.library, f.relpath),
        )
        desired.append(
            DesiredItem(
                item.item_id if item is not None else None,
                contents,
                True,
                make_brief(holder.library, holder.relpath, holder.content_hash, MAX_BRIEF_BYTES),
                tags_for(rules.get(holder.library, ()), holder.relpath),
                holder.file_id,
                wait,
            )
        )
    return Plan(desired, moves, expired)


def _waits(transitions: Sequence[Transition]) -> dict[str, str]:
    """old content -> the new content whose add its item's next call waits for."""
    waits: dict[str, str] = {}
    for t in transitions:
        if t.new_hash is not None and t.new_hash != t.old_hash:
            waits.setdefault(t.old_hash, t.new_hash)
    return waits


def _settle_vanished(
    group: list[FileFact], now: float, grace: float
) -> tuple[list[FileFact], list[Move], list[int]]:
    """(files still holding the item, moves found, expired vanished file ids)."""
    expired = [
        f.file_id
        for f in group
        if f.state == FILE_VANISHED and f.vanished_at is not None and f.vanished_at + grace <= now
    ]
    gone = set(expired)
    vanished = sorted(
        (f for f in group if f.state == FILE_VANISHED and f.file_id not in gone),
        key=lambda f: (f.vanished_at or 0.0, f.file_id),
    )
    live = sorted((f for f in group if f.state == FILE_LIVE), key=lambda f: (f.first_seen_at, f.file_id))
    moves: list[Move] = []
    heirs: set[int] = set()
    for v in vanished:
        since = (v.vanished_at or 0.0) - grace
        for candidate in live:
            if (
                candidate.file_id not in heirs
                and candidate.first_seen_at >= since
                and candidate.first_seen_at >= v.first_seen_at
            ):
                heirs.add(candidate.file_id)
                moves.append(Move(v.file_id, candidate.file_id, v.first_seen_at))
                gone.add(v.file_id)
                break
    return [f for f in group if f.file_id not in gone], moves, expired


def tags_for(rules: Sequence[TagRule], relpath: str) -> tuple[int, ...]:
    """The tags of the first rule whose glob matches ``relpath`` (relative, ``/``-separated).

    Globs follow the include/exclude dialect (:class:`syncd.scan.walk.PathMatcher`).
    """
    for rule in rules:
        if _rule_matcher(rule.glob).matches(relpath):
            return rule.tags
    return ()


@lru_cache(maxsize=256)
def _rule_matcher(glob: str) -> PathMatcher:
    return PathMatcher([glob])
