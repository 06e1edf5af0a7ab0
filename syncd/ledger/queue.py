"""The ledger as the sync engine's work queue: claim due intents, record what the calls did.

An intent is an item row whose ``op`` is set and whose ``state`` is "pending". A worker
claims a few (atomically: one transaction marks them with its owner id and the time),
makes the calls, and records each outcome. A claim is a lease: its holder renews it
(:func:`renew_claims`) while the work runs, and one not renewed for ``stale_after`` seconds
was left by a worker (or a whole host) that died; its intents are claimed again. On
PostgreSQL, hosts claim side by side with ``SELECT … FOR UPDATE SKIP LOCKED``, in one
statement that picks, leases and returns the intents (the copy an add reads included). An
add needs the image's bytes, so a host claims only adds of which one of its libraries holds
a live copy; updates and deletes any host may claim. A claim walks the queue in order and
stops at its limit; a host with nothing to send would walk every other host's backlog to
learn so, and asks the counts the writes keep instead once its claims come back short
(``gated``: :func:`_host_ops`). Recording a success stores what the
gallery now has (``have_*``) and derives the next op from what it should have, so a file
renamed while its add was in flight costs one update afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    String,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import BindParameter

from syncd.ledger.counters import (
    SHARDS,
    ItemMove,
    Scope,
    count_item_moves,
    counted,
    counts_written,
    item_kind,
    items_with_files,
)
from syncd.ledger.dialect import is_postgresql
from syncd.ledger.intents import CLAIM_STALE_AFTER, queue_contents
from syncd.ledger.models import (
    ITEM_FAILED,
    ITEM_PENDING,
    ITEM_SYNCED,
    VERDICT_OK,
    Content,
    File,
    Item,
    LedgerCount,
    Library,
    format_tags,
    intent_op,
    parse_tags,
)
from syncd.ledger.tombstones import record_tombstones
from syncd.paths.states import FILE_LIVE

OPS: tuple[str, ...] = ("add", "update", "delete")


@dataclass(frozen=True)
class Intent:
    """One claimed call: what to do to which item, and where its image is (add)."""

    item_id: int
    gallery: str
    op: str
    #: the gallery's item (update, delete); None for an add
    cont_sign: str | None
    brief: str
    tags: tuple[int, ...]
    #: the file the brief names: an add reads it (None if it went meanwhile)
    library: str | None
    relpath: str | None
    content_hash: str | None
    attempts: int


#: the item another one waits for (one alias: a new one per query defeats the SQL cache)
_blocker = aliased(Item, name="blocker")
#: "pending", inlined: a planner matches a partial index's terms to constants, not to values
#: bound at execution (see ix_items_queue)
_PENDING: ColumnElement[Any] = literal_column(f"'{ITEM_PENDING}'")


def _queued(indexed: bool = True) -> ColumnElement[bool]:
    """An intent still to be sent: the rows of ``ix_items_queue``, in its own terms.

    ``indexed=False``: for a query that reaches its rows by another index (the leases):
    the state is compared as an expression (``|| ''``), which no index
    serves, so SQLite's planner (no statistics) does not walk every pending intent instead.
    """
    state = Item.state if indexed else Item.state.op("||")("")
    return and_(state == _PENDING, Item.op.is_not(None))


def _unblocked_pending(indexed: bool = True) -> ColumnElement[bool]:
    """Pending intents not waiting for another item's add (docs/rules.md, Add before delete);
    ``indexed``: see _queued."""
    blocker = _blocker
    blocked = _fenced(
        select(blocker.id).where(
            blocker.id == Item.wait_for_item_id,
            blocker.state == ITEM_PENDING,
            blocker.op.is_not(None),
        )
    )
    # "waits for nothing, or for nothing pending": the same rows, and the item waited for is
    # looked up only for the rows that wait
    return and_(_queued(indexed), or_(Item.wait_for_item_id.is_(None), ~blocked))


def _fenced(query: Any) -> Any:
    """EXISTS (``query`` OFFSET 0): a test made row by row, for the rows a walk in order
    reaches. Without the OFFSET PostgreSQL's planner may turn it into a join, or into a
    hashed list of every match, over the whole table (every pending intent, every copy a
    host holds), a cost that grows with the ledger where the walk stops after a few rows."""
    return exists(query.correlate(Item).offset(0))


#: the bound values of the claim statements (built once: see _claim_statements)
_NOW = bindparam("now", type_=Float)
_STALE_BEFORE = bindparam("stale_before", type_=Float)


def _unclaimed() -> ColumnElement[bool]:
    """Not claimed, or the lease not renewed since ``stale_before`` (bound at execution)."""
    return or_(Item.claim_owner.is_(None), Item.claimed_at < _STALE_BEFORE)


def _claimable(in_lane_order: bool = False) -> ColumnElement[bool]:
    """Due at ``now`` and not claimed since ``stale_before`` (both bound at execution).

    ``in_lane_order``: for the query that picks intents in lane order. Its due test is
    written so that no index on ``next_attempt_at`` serves it: SQLite would otherwise take
    ``ix_items_due`` and sort the whole backlog on every claim, where the queue's index
    walks it in order and stops at the limit (seconds against milliseconds at 2000)."""
    due_at = Item.next_attempt_at + 0 if in_lane_order else Item.next_attempt_at
    return and_(_unblocked_pending(), due_at <= _NOW, _unclaimed())


def _copy_terms(file: Any = File, library: Any = Library) -> tuple[ColumnElement[bool], ...]:
    """A file that is a live, sendable copy held by a library of host ``host`` (bound at
    execution), for queries that reach the file by its content hash (``file`` and
    ``library``: the entities, or aliases of them, the query names).

    Written so that no index but the content hash's serves them: the file's own state,
    verdict and library are compared as expressions (``|| ''``, ``+ 0``). A planner
    without statistics (SQLite's, until an ANALYZE that syncd never runs) would otherwise
    walk ``ix_files_verdict`` or a library's files for every intent it looks at, a cost
    that grows with the live files; by content hash it is the few copies of one image.
    """
    return (
        library.id == file.library_id + 0,
        library.host == bindparam("host", type_=String),
        file.state.op("||")("") == FILE_LIVE,
        file.verdict.op("||")("") == VERDICT_OK,
    )


def _host_can_send() -> ColumnElement[bool]:
    """An update or delete, or an add of which a library of host ``host`` (bound at
    execution) holds a live copy: only a host with the bytes can send them.

    The check looks up the item's contents, their files by content hash, and each file's
    library: its cost is the item's copies, whatever the number of live files
    (benchmarks/bench_ledger.py).
    """
    local_copy = (
        select(Content.item_id)
        .join(File, File.content_hash == Content.content_hash)
        .join(Library, Library.gallery == Content.gallery)
        .where(Content.item_id == Item.id, *_copy_terms())
    )
    return or_(Item.op != "add", _fenced(local_copy))


def _libraries_elsewhere(library: Any = Library) -> Any:
    """The libraries of a host other than ``host`` (bound at execution); ``library``: the
    entity, or an alias of it, the query names."""
    return select(library.id).where(
        library.host.is_not(None), library.host != bindparam("host", type_=String)
    )


def _alone() -> ColumnElement[bool]:
    """No library of a host other than ``host`` (bound) is in the ledger: every copy is
    this host's (see :func:`copies_elsewhere`); evaluated once per statement."""
    return ~exists(_libraries_elsewhere(aliased(Library, name="other_library")))


@functools.cache
def _work_statement(by_gallery: bool) -> Any:
    """_host_ops' question, built once: whether a library of another host is in the ledger;
    the kept count of the files of host ``host``'s libraries whose item is not synced yet;
    the kept count of the pending updates and deletes (of ``galleries``, when bound)."""
    shards = LedgerCount.shard.in_(list(range(SHARDS)))  # every shard: the key's first column
    mine = select(func.coalesce(func.sum(LedgerCount.n), 0)).where(
        shards,
        LedgerCount.library_id.in_(
            select(Library.id).where(Library.host == bindparam("host", type_=String))
        ),
        LedgerCount.gallery == "",
        LedgerCount.kind == "pending",
    )
    others = select(func.coalesce(func.sum(LedgerCount.n), 0)).where(
        shards,
        LedgerCount.library_id == 0,
        LedgerCount.kind.in_(
            [item_kind(ITEM_PENDING, "update"), item_kind(ITEM_PENDING, "delete")]
        ),
    )
    if by_gallery:
        others = others.where(LedgerCount.gallery.in_(bindparam("galleries", expanding=True)))
    return select(exists(_libraries_elsewhere()), mine.scalar_subquery(), others.scalar_subquery())


def _host_ops(
    session: Session, host: str, galleries: Sequence[str], ops: Sequence[str]
) -> tuple[str, ...]:
    """Of ``ops``, those host ``host`` may find an intent of, by the kept counts: an add
    only when a file of one of its libraries waits for its item (a live copy the host holds
    of an item not synced yet), an update or a delete only when one is pending. A host
    with nothing to send answers this from the counts, where a walk of the queue would
    pass every other host's backlog to learn it. One host alone: every op.

    The counts are exact (tests/ledger/test_counters.py) and read in the claim's own
    transaction (one whose own changes to them are not written yet gets every op); an add
    planned after it wakes the planning host's engine, which looks again."""
    if not counts_written(session):
        return tuple(ops)
    values: dict[str, Any] = {"host": host}
    if galleries:
        values["galleries"] = list(galleries)
    statement = _work_statement(bool(galleries))
    elsewhere, mine, others = session.connection().execute(statement, values).one()
    if not elsewhere:
        return tuple(ops)
    return tuple(op for op in ops if (mine if op == "add" else others) > 0)


def owner_prefix(host: str) -> str:
    """The start of every claim owner of host ``host`` (``host:pid:random``)."""
    return f"{host}:"


def renew_claims(session: Session, owner: str, now: float) -> int:
    """Renew every lease ``owner`` holds to ``now`` (seconds); returns how many (its rows
    are found in ``ix_items_claimed``, the leases alone)."""
    done = session.execute(
        update(Item)
        .where(Item.claim_owner == owner)
        .values(claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def release_host_claims(session: Session, host: str) -> None:
    """Give back the leases of every earlier process of host ``host`` (it holds the host's
    sync lock now, so those processes are gone)."""
    session.execute(
        update(Item)
        .where(
            Item.claim_owner.is_not(None),
            Item.claim_owner.startswith(owner_prefix(host), autoescape=True),
        )
        .values(claim_owner=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )


@functools.cache
def _next_due_statement(by_host: bool, adds: bool = True) -> Any:
    """next_due_at's query, built once: the first row of ``ix_items_due`` (state, due) in
    due order that passes the tests, not a pass over every pending intent (a MIN with these
    tests is no index walk to either planner). ``adds`` False: updates and deletes only."""
    query = (
        select(Item.next_attempt_at)
        .where(
            _unblocked_pending(),
            Item.claim_owner.is_(None),
            Item.gallery.in_(bindparam("galleries", expanding=True)),
            Item.next_attempt_at.is_not(None),
        )
        .order_by(Item.next_attempt_at)
        .limit(1)
    )
    if not adds:
        query = query.where(Item.op != "add")
    return query.where(_host_can_send()) if by_host else query


def next_due_at(
    session: Session, galleries: Sequence[str], host: str | None = None
) -> float | None:
    """When the next unclaimed, unblocked intent of ``galleries`` is due (epoch s), or None;
    with ``host``, only intents that host can send (of the ops the kept counts leave it:
    see _host_ops)."""
    if not galleries:
        return None
    values: dict[str, Any] = {"galleries": list(galleries)}
    by_host = host is not None
    adds = True
    if host is not None:
        session.flush()
        ops = _host_ops(session, host, galleries, OPS)
        if not ops:
            return None
        adds = "add" in ops
        by_host = adds
        if by_host:
            values["host"] = host
    due = session.scalar(_next_due_statement(by_host, adds), values)
    return None if due is None else float(due)


def _narrowed(query: Any, by_gallery: bool, by_lane: bool) -> Any:
    """``query`` for the galleries and the lane (``in_lane``: no column's name, which an
    UPDATE would take for a value to set) bound at execution, when asked."""
    if by_gallery:
        query = query.where(Item.gallery.in_(bindparam("galleries", expanding=True)))
    if by_lane:
        query = query.where(Item.lane == bindparam("in_lane", type_=Integer))
    return query


def _due(by_gallery: bool, by_host: bool, by_lane: bool) -> Any:
    """The ids a claim takes, up to ``limit`` (bound), locked: a walk of the queue in lane
    order (the live lane first, each lane in its own order: docs/rules.md, Fresh changes
    first) that stops at the limit.

    The walk takes ``ix_items_queue`` (SQLite ``ix_items_lane``, the same order); the tests
    that look at another row (the item waited for, the host's copy) are made row by row for
    the rows it reaches (see _fenced), so a claim costs the rows walked, whatever the
    backlog. PostgreSQL: rows another host is claiming right now are skipped, not waited
    for."""
    due = select(Item.id).where(
        _claimable(in_lane_order=True), Item.op.in_(bindparam("ops", expanding=True))
    )
    if by_host:
        due = due.where(or_(_alone(), _host_can_send()))
    due = _narrowed(due, by_gallery, by_lane).order_by(Item.lane, Item.order_key, Item.id)
    return due.limit(bindparam("limit", type_=Integer)).with_for_update(skip_locked=True)


@functools.cache
def _claim_statements(
    by_gallery: bool, by_host: bool = False, by_lane: bool = False
) -> tuple[Any, Update, Any]:
    """SQLite's statements of a claim (pick, mark, read), built once: SQLAlchemy then finds
    them in its cache without walking them again (a third of a claim's CPU when rebuilt per
    call). PostgreSQL claims in one statement: see _claim_statement.
    """
    due = _due(by_gallery, by_host, by_lane)
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    mark = (
        update(Item)
        .where(Item.id.in_(ids), _claimable())
        .values(claim_owner=bindparam("owner", type_=String), claimed_at=_NOW)
        .execution_options(synchronize_session=False)
    )
    # columns, not ORM rows: a claim feeds every worker and runs once per few calls
    claimed = (
        select(
            Item.id,
            Item.gallery,
            Item.op,
            Item.cont_sign,
            Item.want_brief,
            Item.want_tags,
            Library.name,
            File.relpath,
            File.content_hash,
            Item.attempts,
            Library.host,
        )
        .outerjoin(File, File.id == Item.source_file_id)
        .outerjoin(Library, Library.id == File.library_id)
        .where(Item.id.in_(ids), Item.claim_owner == bindparam("owner"), Item.claimed_at == _NOW)
        .order_by(Item.lane, Item.order_key, Item.id)
    )
    return due, mark, claimed


@functools.cache
def _claim_statement(by_gallery: bool, by_host: bool, by_lane: bool) -> Any:
    """PostgreSQL's claim: one statement that picks the intents (``FOR UPDATE SKIP
    LOCKED``), leases them and returns what the workers need, the copy an add reads
    included; built once.

    The pick is _due's walk of the queue; the update and the joins then touch only the
    rows it picked.
    """
    picked = _due(by_gallery, by_host, by_lane).cte("picked")
    claimed = (
        update(Item)
        .where(Item.id == picked.c.id)
        .values(claim_owner=bindparam("owner", type_=String), claimed_at=_NOW)
        .returning(
            Item.id,
            Item.gallery,
            Item.op,
            Item.cont_sign,
            Item.want_brief,
            Item.want_tags,
            Item.attempts,
            Item.lane,
            Item.order_key,
            Item.source_file_id,
        )
        .cte("claimed")
    )
    source = aliased(File, name="source")
    source_library = aliased(Library, name="source_library")
    columns: list[Any] = [
        claimed.c.id,
        claimed.c.gallery,
        claimed.c.op,
        claimed.c.cont_sign,
        claimed.c.want_brief,
        claimed.c.want_tags,
        source_library.name.label("library"),
        source.relpath.label("relpath"),
        source.content_hash.label("content_hash"),
        claimed.c.attempts,
    ]
    joined: Any = claimed.outerjoin(source, source.id == claimed.c.source_file_id).outerjoin(
        source_library, source_library.id == source.library_id
    )
    if by_host:
        # an add whose brief names another host's copy (the oldest) reads this host's own
        local = (
            _oldest_local_copy(claimed.c.id)
            .where(
                claimed.c.op == "add",
                or_(
                    source_library.host.is_(None),
                    source_library.host != bindparam("host", type_=String),
                ),
            )
            .lateral("local_copy")
        )
        joined = joined.outerjoin(local, true())
        columns += [
            local.c.library.label("local_library"),
            local.c.relpath.label("local_relpath"),
            local.c.content_hash.label("local_content_hash"),
        ]
    return (
        select(*columns)
        .select_from(joined)
        .order_by(claimed.c.lane, claimed.c.order_key, claimed.c.id)
    )


def claim_due_intents(
    session: Session,
    owner: str,
    now: float,
    *,
    limit: int = 100,
    ops: Sequence[str] = OPS,
    galleries: Sequence[str] = (),
    stale_after: float = CLAIM_STALE_AFTER,
    host: str | None = None,
    lane: int | None = None,
    gated: bool = False,
) -> list[Intent]:
    """Claim up to ``limit`` due intents for ``owner`` (unique per worker) at ``now`` (s).

    Due: pending, ``next_attempt_at <= now``, not claimed (or the lease not renewed for
    ``stale_after`` seconds), and not waiting for another item's add. With ``host``, adds
    only when a library of that host holds a live copy (or no library of another host is in
    the ledger: :func:`copies_elsewhere` need not be asked first), and an add reads that
    copy. With ``lane``, only intents waiting in that lane. The live lane comes first, then
    each lane in its order. Call inside a transaction; the claim holds once it commits.

    ``gated``, with ``host`` among other hosts: the kept counts say first which ops it may
    find (_host_ops), so a host with nothing to send claims without walking the queue (the
    engine asks so once its claims come back short: a host with work finds it in the
    first rows it walks, one statement sooner).
    """
    if limit <= 0:
        return []
    session.flush()  # Core statements do not autoflush the session's pending changes
    connection = session.connection()
    if host is not None and gated:
        ops = _host_ops(session, host, galleries, ops)
        if not ops:
            return []
    shape = (bool(galleries), host is not None, lane is not None)
    values: dict[str, Any] = {
        "now": now,
        "stale_before": now - stale_after,
        "ops": list(ops),
        "limit": limit,
        "owner": owner,
    }
    if galleries:
        values["galleries"] = list(galleries)
    if lane is not None:
        values["in_lane"] = lane
    if host is not None:
        values["host"] = host
    # Core execution on the session's connection: the ORM's per-statement setup is most of
    # the cost of these small statements, and no ORM object is wanted
    if is_postgresql(connection):
        return _claim_in_one(connection, shape, values)
    due, mark, claimed = _claim_statements(*shape)
    ids = list(connection.execute(due, values).scalars())
    if not ids:
        return []
    values["ids"] = ids
    connection.execute(mark, values)
    intents: list[Intent] = []
    for row in connection.execute(claimed, values):
        intent = _intent_of(row)
        if host is not None and intent.op == "add" and row.host != host:
            # the brief names another host's copy (the oldest); this host sends its own
            intent = _with_local_copy(connection, intent, host)
        intents.append(intent)
    return intents


def _intent_of(row: Any) -> Intent:
    """The intent of a claim's row: its first ten columns, in the order of both engines'
    claim statements (item id, gallery, op, cont_sign, brief, tags, library, path, content
    hash, attempts)."""
    fields = tuple(row)[:10]
    item_id, gallery, op, cont_sign, brief, tags, library, relpath, content_hash, attempts = fields
    return Intent(
        item_id,
        gallery,
        op or "",
        cont_sign,
        brief,
        parse_tags(tags),
        library,
        relpath,
        content_hash,
        attempts,
    )


def _claim_in_one(
    connection: Any, shape: tuple[bool, bool, bool], values: dict[str, Any]
) -> list[Intent]:
    """PostgreSQL's claim (see _claim_statement)."""
    intents: list[Intent] = []
    for row in connection.execute(_claim_statement(*shape), values):
        intent = _intent_of(row)
        local = row._mapping.get("local_library")
        if local is not None:  # an add of this host's own copy (the brief names another's)
            intent = replace(
                intent,
                library=local,
                relpath=row.local_relpath,
                content_hash=row.local_content_hash,
            )
        intents.append(intent)
    return intents


def _oldest_local_copy(item_id: Any) -> Any:
    """The oldest live copy of the item ``item_id`` (a bound value, or the column of an
    outer query) held by a library of host ``host`` (bound): its library, path and hash."""
    return (
        select(
            Library.name.label("library"),
            File.relpath.label("relpath"),
            File.content_hash.label("content_hash"),
        )
        .select_from(Content)
        .join(File, File.content_hash == Content.content_hash)
        .join(Library, Library.gallery == Content.gallery)
        .where(Content.item_id == item_id, *_copy_terms())
        .order_by(File.first_seen_at, File.id)
        .limit(1)
    )


@functools.cache
def _local_copy_statement() -> Any:
    """SQLite's look for an add's own copy, one claimed item at a time (built once)."""
    return _oldest_local_copy(bindparam("item_id", type_=Integer))


def _with_local_copy(connection: Any, intent: Intent, host: str) -> Intent:
    """``intent`` reading the copy a library of ``host`` holds (unchanged if none: the add
    then fails as "no live file", and the planner's next look settles it)."""
    row = connection.execute(
        _local_copy_statement(), {"item_id": intent.item_id, "host": host}
    ).first()
    if row is None:
        return intent
    library, relpath, content_hash = row
    return replace(intent, library=library, relpath=relpath, content_hash=content_hash)


def release_claims(session: Session, owner: str) -> None:
    """Give back every intent ``owner`` still holds (a clean shutdown)."""
    session.execute(
        update(Item).where(Item.claim_owner == owner).values(claim_owner=None, claimed_at=None)
    )


#: _LOCKED_READ: an answer is recorded from the item row as it is now, locked (``SELECT …
#: FOR UPDATE`` on PostgreSQL): a planner rewriting what the item should be meanwhile, on
#: this host or another, is waited for, so neither writes from a stale row

#: the columns _finished sets
_FINISHED_COLUMNS = (
    "claim_owner",
    "claimed_at",
    "updated_at",
    "error_code",
    "error_message",
    "latency_until",
    "op",
    "attempts",
    "state",
    "wait_for_item_id",
    "next_attempt_at",
)


def _finished(
    *,
    cont_sign: str | None,
    have_brief: str | None,
    have_tags: str | None,
    want_present: bool,
    want_brief: str,
    want_tags: str,
    claim_owner: str | None,
    claimed_at: float | None,
    next_attempt_at: float,
    wait_for_item_id: int | None,
    owner: str,
    now: float,
) -> dict[str, Any]:
    """The columns of an item after a call changed what the gallery has: ``owner``'s claim
    and the error gone, and the next intent derived from have/want (``_FINISHED_COLUMNS``)."""
    op = intent_op(cont_sign, want_present, want_brief, want_tags, have_brief, have_tags)
    mine = claim_owner == owner
    return {
        "claim_owner": None if mine else claim_owner,
        "claimed_at": None if mine else claimed_at,
        "updated_at": now,
        "error_code": None,
        "error_message": None,
        "latency_until": None,
        "op": op,
        "attempts": 0,
        "state": ITEM_SYNCED if op is None else ITEM_PENDING,
        "wait_for_item_id": None if op is None else wait_for_item_id,
        "next_attempt_at": next_attempt_at if op is None else now,
    }


def _finish(session: Session, item: Item, owner: str, now: float) -> None:
    """Derive the next intent from have/want after a call changed what the gallery has."""
    values = _finished(
        cont_sign=item.cont_sign,
        have_brief=item.have_brief,
        have_tags=item.have_tags,
        want_present=item.want_present,
        want_brief=item.want_brief,
        want_tags=item.want_tags,
        claim_owner=item.claim_owner,
        claimed_at=item.claimed_at,
        next_attempt_at=item.next_attempt_at,
        wait_for_item_id=item.wait_for_item_id,
        owner=owner,
        now=now,
    )
    for column, value in values.items():
        setattr(item, column, value)


def record_added(
    session: Session,
    item_id: int,
    owner: str,
    cont_sign: str,
    brief: str | None,
    tags: tuple[int, ...] | None,
    now: float,
) -> None:
    """The item is in the gallery as ``cont_sign`` with ``brief``/``tags`` (None: unknown,
    e.g. an adopted item: an update follows)."""
    item = session.get(Item, item_id, with_for_update=True)  # see _LOCKED_READ
    if item is None:
        return
    with counted(session, Scope(item_ids={item_id}, states_only=True)):
        item.cont_sign = cont_sign
        item.have_brief = brief
        item.have_tags = None if tags is None else format_tags(tags)
        _finish(session, item, owner, now)


@dataclass(frozen=True)
class AddedItem:
    """A successful add to record: the item is ``cont_sign`` with ``brief``/``tags`` since
    ``now`` (seconds since the epoch)."""

    item_id: int
    cont_sign: str
    brief: str
    tags: tuple[int, ...]
    now: float


#: what record_adds sets: what the gallery has now, and what _finished derives from it
_ADD_COLUMNS = ("cont_sign", "have_brief", "have_tags", *_FINISHED_COLUMNS)


@functools.cache
def _record_adds_statements() -> tuple[Any, Any]:
    """record_adds' two statements, built once (see _claim_statements)."""
    # the items locked in id order: what the answer derives the next intent from
    current = (
        select(
            Item.id,
            Item.want_present,
            Item.want_brief,
            Item.want_tags,
            Item.claim_owner,
            Item.claimed_at,
            Item.next_attempt_at,
            Item.wait_for_item_id,
        )
        .where(Item.id.in_(bindparam("ids", expanding=True)))
        .order_by(Item.id)
        .with_for_update()
    )
    table = cast(Table, Item.__table__)
    record = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({key: bindparam(key) for key in _ADD_COLUMNS})
    )
    return current, record


def record_adds(session: Session, added: Sequence[AddedItem], owner: str) -> None:
    """:func:`record_added` for several items in three statements, loading no ORM rows.

    The workers' group commit records most answers this way; the item rows must not be
    loaded in ``session`` (a bulk update does not refresh them). The counts follow from one
    read of the locked items' states and files and what the answer sets
    (counters.count_item_moves): no count before and after.
    """
    if not added:
        return
    current_rows, record = _record_adds_statements()
    session.flush()  # Core statements do not autoflush the session's pending changes
    connection = session.connection()
    current = {
        row.id: row for row in connection.execute(current_rows, {"ids": [a.item_id for a in added]})
    }
    # then, the items held, their states and files as they are now (what the counts need)
    states, files = items_with_files(connection, current)
    # an item answered twice ends as its last answer says: one row, one move, per item
    params: dict[int, dict[str, Any]] = {}
    for answer in added:
        row = current.get(answer.item_id)
        if row is None:
            continue
        tags = format_tags(answer.tags)
        params[answer.item_id] = {
            "b_id": answer.item_id,
            "cont_sign": answer.cont_sign,
            "have_brief": answer.brief,
            "have_tags": tags,
            **_finished(
                cont_sign=answer.cont_sign,
                have_brief=answer.brief,
                have_tags=tags,
                want_present=row.want_present,
                want_brief=row.want_brief,
                want_tags=row.want_tags,
                claim_owner=row.claim_owner,
                claimed_at=row.claimed_at,
                next_attempt_at=row.next_attempt_at,
                wait_for_item_id=row.wait_for_item_id,
                owner=owner,
                now=answer.now,
            ),
        }
    if not params:
        return
    count_item_moves(
        session,
        (
            ItemMove(
                states[item_id][0],
                states[item_id][1:],
                (values["state"], values["op"]),
                files.get(item_id, ()),
            )
            for item_id, values in params.items()
        ),
    )
    # one executemany of a Core statement: the ORM's bulk path costs more than the SQL
    connection.execute(record, list(params.values()))


def record_updated(
    session: Session, item_id: int, owner: str, brief: str, tags: tuple[int, ...], now: float
) -> None:
    """The gallery's item now carries ``brief`` and ``tags``."""
    item = session.get(Item, item_id, with_for_update=True)  # see _LOCKED_READ
    if item is None:
        return
    with counted(session, Scope(item_ids={item_id}, states_only=True)):
        item.have_brief = brief
        item.have_tags = format_tags(tags)
        _finish(session, item, owner, now)


def record_deleted(session: Session, item_ids: Sequence[int], owner: str, now: float) -> None:
    """These items are gone from the gallery (a batch delete, or 216680 on delete).

    Each leaves a tombstone; an item that should still be there (its file came back
    meanwhile) is added again, the others are forgotten.
    """
    locked = select(Item).where(Item.id.in_(item_ids)).order_by(Item.id).with_for_update()
    items = list(session.scalars(locked))
    with counted(session, Scope(item_ids={item.id for item in items})):
        for item in items:
            if item.cont_sign is not None:
                content_hash = session.scalar(
                    select(Content.content_hash).where(Content.item_id == item.id).limit(1)
                )
                record_tombstones(session, item.gallery, [item.cont_sign], content_hash, now)
            item.cont_sign = None
            item.have_brief = None
            item.have_tags = None
            if not item.want_present:
                session.delete(item)
                continue
            _finish(session, item, owner, now)


def record_failure(
    session: Session,
    item_id: int,
    owner: str,
    code: int | None,
    message: str,
    now: float,
    retry_at: float | None,
) -> None:
    """A call for the item failed with API ``code``/``message`` (never a secret); ``code``
    None: a reason of syncd's own (the file cannot be read, …).

    ``retry_at`` (seconds since the epoch) schedules another attempt (backoff); None marks
    the item failed until its file changes or ``syncd retry``.
    """
    item = session.get(Item, item_id, with_for_update=True)  # see _LOCKED_READ
    if item is None:
        return
    if item.claim_owner == owner:
        item.claim_owner = None
        item.claimed_at = None
    item.attempts += 1
    item.error_code = code
    item.error_message = message
    item.latency_until = None
    item.updated_at = now
    if retry_at is None:
        with counted(session, Scope(item_ids={item_id}, states_only=True)):
            item.state = ITEM_FAILED
    else:
        item.next_attempt_at = retry_at


def retry_failed(session: Session, item_ids: Sequence[int], now: float) -> None:
    """Make failed items, and pending ones waiting on a backoff, due again now (``syncd
    retry``)."""
    _lock_items(session, item_ids)
    with counted(session, Scope(item_ids=set(item_ids), states_only=True)):
        session.execute(
            update(Item)
            .where(
                Item.id.in_(item_ids),
                or_(
                    Item.state == ITEM_FAILED,
                    and_(Item.state == ITEM_PENDING, Item.op.is_not(None)),
                ),
            )
            .values(state=ITEM_PENDING, attempts=0, next_attempt_at=now)
        )


def _lock_items(session: Session, item_ids: Sequence[int]) -> None:
    """Lock these items for an update, in id order, before their counts are read (see
    syncd.ledger.counters)."""
    for start in range(0, len(item_ids), 500):
        chunk = sorted(item_ids)[start : start + 500]
        session.execute(
            select(Item.id).where(Item.id.in_(chunk)).order_by(Item.id).with_for_update()
        ).all()


def merge_items(session: Session, from_item_id: int, into_item_id: int) -> None:
    """Adoption (216681): the contents of ``from_item_id`` belong to ``into_item_id`` now.

    The merged item is queued for the planner (its brief names the oldest copy of all).
    """
    rows = session.execute(
        select(Content.gallery, Content.content_hash).where(
            Content.item_id.in_([from_item_id, into_item_id])
        )
    ).all()
    _lock_items(session, [from_item_id, into_item_id])
    with counted(session, Scope(item_ids={from_item_id, into_item_id})):
        session.execute(
            update(Content).where(Content.item_id == from_item_id).values(item_id=into_item_id)
        )
        session.execute(
            update(Item).where(Item.wait_for_item_id == from_item_id).values(wait_for_item_id=None)
        )
        session.execute(delete(Item).where(Item.id == from_item_id))
    for gallery in {g for g, _ in rows}:
        queue_contents(session, gallery, [h for g, h in rows if g == gallery])


def requeue(session: Session, item_ids: Sequence[int], owner: str, at: float) -> None:
    """Give the intents ``owner`` holds back, due at ``at`` (epoch s), without counting an
    attempt (a rate or quota pause, a shutdown, a closed gallery)."""
    session.execute(
        update(Item)
        .where(Item.id.in_(item_ids), Item.claim_owner == owner)
        .values(claim_owner=None, claimed_at=None, next_attempt_at=at)
        .execution_options(synchronize_session=False)
    )


def wait_out_latency(session: Session, item_id: int, owner: str, until: float, why: str) -> None:
    """The gallery still holds a copy of this image that syncd deleted lately: its add waits
    until ``until`` (epoch s), when the deletion latency is over (docs/rules.md, Deletion
    latency)."""
    session.execute(
        update(Item)
        .where(Item.id == item_id, Item.claim_owner == owner)
        .values(
            claim_owner=None,
            claimed_at=None,
            next_attempt_at=until,
            latency_until=until,
            error_code=None,
            error_message=why,
        )
        .execution_options(synchronize_session=False)
    )


def held_by(session: Session, item_ids: Sequence[int], owner: str) -> set[int]:
    """Those of ``item_ids`` whose claim ``owner`` still holds."""
    return set(
        session.scalars(select(Item.id).where(Item.id.in_(item_ids), Item.claim_owner == owner))
    )


@functools.cache
def _next_lease_end_statement() -> Any:
    """next_lease_end's query, built once: over ``ix_items_claimed`` (the leases alone)."""
    return (
        select(Item.claimed_at)
        .where(
            Item.claim_owner.is_not(None),
            ~Item.claim_owner.like(bindparam("prefix", type_=String), escape="/"),
            Item.claimed_at.is_not(None),
            _unblocked_pending(indexed=False),
            Item.gallery.op("||")("").in_(bindparam("galleries", expanding=True)),
            _host_can_send(),
        )
        .order_by(Item.claimed_at)
        .limit(1)
    )


def _starts_with(prefix: str) -> str:
    """The LIKE pattern (escape character ``/``) of the texts that start with ``prefix``."""
    escaped = prefix.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"{escaped}%"


def next_lease_end(
    session: Session, galleries: Sequence[str], host: str, stale_after: float = CLAIM_STALE_AFTER
) -> float | None:
    """When the first lease another host (or an earlier process) holds on an intent of
    ``galleries`` that ``host`` could send runs out, unless renewed (epoch s), or None: a
    host that died leaves its work to whoever wakes then."""
    if not galleries:
        return None
    first = session.scalar(
        _next_lease_end_statement(),
        {"prefix": _starts_with(owner_prefix(host)), "galleries": list(galleries), "host": host},
    )
    return None if first is None else float(first) + stale_after


@functools.cache
def _elsewhere_statement() -> Any:
    """copies_elsewhere's query, built once."""
    return _libraries_elsewhere().limit(1)


def copies_elsewhere(session: Session, host: str) -> bool:
    """Whether a library of another host is in the ledger: only then may an add be one
    this host cannot send (it has no copy). One host alone needs no such check.

    Asked by an idle engine (when the next intent is due, when a lease runs out; a claim's
    own statement asks it itself): a Core statement on the session's connection (the ORM's
    setup of a statement costs more than this one)."""
    session.flush()
    found = session.connection().execute(_elsewhere_statement(), {"host": host}).first()
    return found is not None
