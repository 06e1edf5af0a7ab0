"""The planner's queries: the queue of contents to plan, the facts it reads, its answer.

``syncd.plan.driver`` runs the planner over these; work comes from the ``plan_queue`` table
(filled in the same transaction as the file rows that changed) and from vanished files
whose grace is over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from syncd.ledger.counters import Scope, counted
from syncd.ledger.dialect import insert_or_ignore
from syncd.ledger.facts import DesiredItem, FileFact, ItemFact, Plan, Transition
from syncd.ledger.hosts import hold_planning_lock
from syncd.ledger.models import (
    ITEM_FAILED,
    ITEM_PENDING,
    ITEM_SYNCED,
    LANE_BULK,
    LANE_LIVE,
    VERDICT_OK,
    Content,
    File,
    Item,
    Library,
    PlanQueue,
    format_tags,
    intent_op,
    parse_tags,
)
from syncd.paths.states import FILE_VANISHED

#: contents planned per transaction
PLAN_CHUNK = 500
#: seconds a claim (a lease) holds unless renewed: its holder renews it every few seconds
#: (syncd.gates.heartbeat), so a lease this old was left by a worker or host that died and a
#: dead host's updates and deletes are taken over within about a minute
CLAIM_STALE_AFTER = 30.0


@dataclass
class ReplanStats:
    """What one planner run changed (counts of items)."""

    planned_contents: int = 0
    new_items: int = 0
    changed_items: int = 0
    dropped_items: int = 0


def queue_contents(
    session: Session, gallery: str, hashes: Iterable[str], successor: str | None = None
) -> None:
    """Ask the planner to look at ``hashes`` of ``gallery`` (in the caller's transaction).

    ``successor``: the content that replaced these at a path; their items' next call then
    waits for its add.
    """
    rows = [
        {"gallery": gallery, "content_hash": h, "successor_hash": successor} for h in set(hashes)
    ]
    if not rows:
        return
    session.execute(insert_or_ignore(PlanQueue), rows)
    if successor is not None:
        session.execute(
            update(PlanQueue)
            .where(
                PlanQueue.gallery == gallery,
                PlanQueue.content_hash.in_([r["content_hash"] for r in rows]),
                PlanQueue.successor_hash.is_(None),
            )
            .values(successor_hash=successor)
        )


def queue_expired_vanished(session: Session, now: float, delete_grace: float) -> None:
    """Queue the contents of vanished files whose ``delete_grace`` (seconds) is over."""
    expired = (
        select(Library.gallery, File.content_hash)
        .join(Library, File.library_id == Library.id)
        .where(
            File.state == FILE_VANISHED,
            File.vanished_at <= now - delete_grace,
            File.content_hash.is_not(None),
        )
        .distinct()
    )
    by_gallery: dict[str, list[str]] = {}
    for gallery, content_hash in session.execute(expired):
        if content_hash is not None:
            by_gallery.setdefault(gallery, []).append(content_hash)
    for gallery, hashes in by_gallery.items():
        for start in range(0, len(hashes), PLAN_CHUNK):
            queue_contents(session, gallery, hashes[start : start + PLAN_CHUNK])


@dataclass(frozen=True)
class PlanBatch:
    """Queued contents of one gallery, taken together into one planner run."""

    gallery: str
    contents: list[str]
    #: content -> the content that replaced it at a path (its add goes first)
    transitions: list[Transition]


@dataclass
class PlanFacts:
    """What the planner reads of a batch: the item rows that hold its contents (and every
    content of those items), and every file row of all those contents."""

    rows: dict[int, Item]
    items: list[ItemFact]
    files: list[FileFact]


def next_plan_batch(session: Session, chunk: int) -> PlanBatch | None:
    """Up to ``chunk`` queued contents of one gallery, successors (new contents) first;
    None when the queue is empty."""
    hold_planning_lock(session)  # several hosts: one plans at a time
    successors = select(PlanQueue.successor_hash).where(PlanQueue.successor_hash.is_not(None))
    rows = list(
        session.scalars(
            select(PlanQueue).where(PlanQueue.content_hash.in_(successors)).limit(chunk)
        )
    )
    if not rows:
        rows = list(session.scalars(select(PlanQueue).order_by(PlanQueue.gallery).limit(chunk)))
    if not rows:
        return None
    gallery = rows[0].gallery
    batch = [row for row in rows if row.gallery == gallery]
    return PlanBatch(
        gallery,
        [row.content_hash for row in batch],
        [Transition(row.content_hash, row.successor_hash) for row in batch if row.successor_hash],
    )


def drop_planned(session: Session, batch: PlanBatch) -> None:
    """Take a planned batch off the queue."""
    session.execute(
        delete(PlanQueue).where(
            PlanQueue.gallery == batch.gallery, PlanQueue.content_hash.in_(batch.contents)
        )
    )


def load_plan_facts(session: Session, batch: PlanBatch) -> PlanFacts:
    """The planner's facts for ``batch`` (see :class:`PlanFacts`)."""
    gallery = batch.gallery
    item_ids = set(
        session.scalars(
            select(Content.item_id).where(
                Content.gallery == gallery, Content.content_hash.in_(batch.contents)
            )
        )
    )
    # locked: a worker recording an answer for one of them waits, and is waited for
    locked = select(Item).where(Item.id.in_(item_ids)).order_by(Item.id).with_for_update()
    items = {i.id: i for i in session.scalars(locked)}
    contents: dict[int, set[str]] = {i: set() for i in items}
    for item_id, content_hash in session.execute(
        select(Content.item_id, Content.content_hash).where(Content.item_id.in_(item_ids))
    ):
        contents[item_id].add(content_hash)
    all_hashes = set(batch.contents).union(*contents.values())
    files = [
        FileFact(fid, lib, relpath, h or "", state, first_seen, vanished_at, mtime_ns)
        for fid, lib, relpath, h, state, first_seen, vanished_at, mtime_ns in session.execute(
            select(
                File.id,
                Library.name,
                File.relpath,
                File.content_hash,
                File.state,
                File.first_seen_at,
                File.vanished_at,
                File.mtime_ns,
            )
            .join(Library, File.library_id == Library.id)
            .where(
                Library.gallery == gallery,
                File.content_hash.in_(all_hashes),
                File.verdict == VERDICT_OK,
            )
        )
    ]
    item_facts = [
        ItemFact(
            i.id,
            frozenset(contents[i.id]),
            i.cont_sign,
            i.want_present,
            i.want_brief,
            parse_tags(i.want_tags),
        )
        for i in items.values()
    ]
    return PlanFacts(items, item_facts, files)


@dataclass(frozen=True)
class Lane:
    """The lane new intents of a planner run wait in (docs/rules.md, Fresh changes first), and
    their order in it."""

    lane: int
    now: float
    #: file id -> mtime (ns) of the files the plan read
    mtimes: Mapping[int, int]

    def order_key(self, source_file_id: int | None) -> float:
        """Live: the oldest change first; bulk: the newest file first (a delete, with no
        file, goes ahead: it is cheap)."""
        if self.lane == LANE_LIVE:
            return self.now
        mtime = self.mtimes.get(source_file_id or -1)
        return -(mtime / 1e9) if mtime else -self.now


def write_plan(
    session: Session,
    gallery: str,
    facts: PlanFacts,
    plan: Plan,
    now: float,
    stats: ReplanStats,
    lane: int = LANE_BULK,
) -> None:
    """Write the planner's answer for one batch: file rows that expired or moved, new
    items, changed intents (in ``lane``), and which intent waits for which add."""
    gone = plan.expired_file_ids + [m.vanished_file_id for m in plan.moves]
    # every file and item the answer can touch: the batch's files, contents and items
    scope = Scope(
        file_ids=set(gone),
        hashes={f.content_hash for f in facts.files if f.content_hash}
        | {h for d in plan.items for h in d.contents}
        | {h for i in facts.items for h in i.contents},
        item_ids=set(facts.rows),
    )
    with counted(session, scope):
        _write_plan(session, gallery, facts, plan, now, stats, lane, gone)


def _write_plan(
    session: Session,
    gallery: str,
    facts: PlanFacts,
    plan: Plan,
    now: float,
    stats: ReplanStats,
    lane: int,
    gone: list[int],
) -> None:
    queued = Lane(lane, now, {f.file_id: f.mtime_ns for f in facts.files})
    if gone:
        session.execute(delete(File).where(File.id.in_(gone)))
    if plan.moves:
        session.execute(
            update(File),
            [{"id": m.heir_file_id, "first_seen_at": m.first_seen_at} for m in plan.moves],
        )
    new = [d for d in plan.items if d.item_id is None]
    _insert_items(session, gallery, new, queued)
    stats.new_items += len(new)
    items = facts.rows
    kept = [
        d
        for d in plan.items
        if d.item_id is not None and _apply_desired(session, items[d.item_id], d, queued, stats)
    ]
    _resolve_waits(session, gallery, kept, items)


def _insert_items(session: Session, gallery: str, new: Sequence[DesiredItem], lane: Lane) -> None:
    if not new:
        return
    now = lane.now
    ids = session.scalars(
        insert(Item).returning(Item.id, sort_by_parameter_order=True),
        [
            {
                "gallery": gallery,
                "want_present": True,
                "want_brief": d.brief,
                "want_tags": format_tags(d.tags),
                "source_file_id": d.source_file_id,
                "op": "add",
                "state": ITEM_PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "updated_at": now,
                "lane": lane.lane,
                "order_key": lane.order_key(d.source_file_id),
            }
            for d in new
        ],
    ).all()
    session.execute(
        insert(Content),
        [
            {"gallery": gallery, "content_hash": h, "item_id": item_id}
            for d, item_id in zip(new, ids, strict=True)
            for h in d.contents
        ],
    )


def _apply_desired(
    session: Session, item: Item, desired: DesiredItem, lane: Lane, stats: ReplanStats
) -> bool:
    """Write ``desired`` into ``item``; False when the item row was dropped. New work waits
    in ``lane``; work already pending keeps its place unless the live lane takes it."""
    now = lane.now
    tags = format_tags(desired.tags)
    want_changed = (item.want_present, item.want_brief, item.want_tags) != (
        desired.present,
        desired.brief,
        tags,
    )
    op = intent_op(
        item.cont_sign, desired.present, desired.brief, tags, item.have_brief, item.have_tags
    )
    claimed = item.claim_owner is not None and (item.claimed_at or 0.0) > now - CLAIM_STALE_AFTER
    if not desired.present and item.cont_sign is None and not claimed:
        session.delete(item)
        stats.dropped_items += 1
        return False
    if not want_changed and op == item.op and item.source_file_id == desired.source_file_id:
        return True
    item.want_present = desired.present
    item.want_brief = desired.brief
    item.want_tags = tags
    item.source_file_id = desired.source_file_id
    item.updated_at = now
    stats.changed_items += 1
    was_pending = item.state == ITEM_PENDING and item.op is not None
    set_intent(item, op, now, fresh_want=want_changed)
    if item.op is not None and (not was_pending or lane.lane < item.lane):
        item.lane = lane.lane
        item.order_key = lane.order_key(item.source_file_id)
    return True


def set_intent(item: Item, op: str | None, now: float, fresh_want: bool) -> None:
    """Record ``op`` as the item's intent and the state that follows from it.

    A failed add stays failed (the same bytes would be refused again: a bad image, see
    docs/rules.md, Error classes); another failed call is tried again when what the item
    should be changed.
    Work that was already pending keeps its backoff.
    """
    previous_state, previous_op = item.state, item.op
    item.op = op
    if op is None:
        item.state = ITEM_SYNCED
        item.attempts = 0
        item.error_code = None
        item.error_message = None
        item.wait_for_item_id = None
        return
    if previous_state == ITEM_FAILED and (op == "add" or (op == previous_op and not fresh_want)):
        return
    if previous_state != ITEM_PENDING or op != previous_op:
        item.state = ITEM_PENDING
        item.attempts = 0
        item.next_attempt_at = now


def _resolve_waits(
    session: Session, gallery: str, planned: Sequence[DesiredItem], items: Mapping[int, Item]
) -> None:
    """Point each planned item that waits for a new content at that content's pending add."""
    wanted = {d.wait_for_content for d in planned if d.wait_for_content}
    blockers: dict[str, int] = {}
    if wanted:
        rows = session.execute(
            select(Content.content_hash, Content.item_id)
            .join(Item, Item.id == Content.item_id)
            .where(
                Content.gallery == gallery,
                Content.content_hash.in_(wanted),
                Item.op == "add",
                Item.state == ITEM_PENDING,
            )
        )
        blockers = {content_hash: item_id for content_hash, item_id in rows}
    for d in planned:
        assert d.item_id is not None
        item = items[d.item_id]
        if d.wait_for_content is None or item.op is None:
            continue  # an earlier wait stays: the claim query lets it go once its add is done
        blocker = blockers.get(d.wait_for_content)
        target = blocker if blocker != item.id else None
        if item.wait_for_item_id != target:
            item.wait_for_item_id = target
