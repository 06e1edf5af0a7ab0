"""Counts kept in step by the writes: what ``status``, ``/api/status`` and ``/metrics`` show
without counting ten million rows (schema v5).

Two families of counts live in the ``ledger_counts`` table:

- per library: ``files`` (live files), ``synced``, ``pending`` (live files whose item is
  not synced yet, and vanished files), ``failed`` (refused, unreadable, or whose call
  failed), ``held`` (held deletes) and ``items`` (distinct items of its live files): the
  lines of :class:`syncd.ledger.report.LibraryStatus`;
- per gallery: items by state and op (``item:<state>:<op>``): the queue and ``/metrics``.

No single row takes every write: a row is keyed by (shard, library, gallery, kind) and
holds a delta; a count is the sum over the shards. On PostgreSQL a transaction adds its
deltas to one shard picked at random of :data:`SHARDS` (in key order, one statement, when it
commits), so twenty hosts writing at once rarely wait on one counter row; SQLite has one
writer and uses shard 0.

How a write keeps them in step: it runs inside :func:`counted` with the scope it may change
(file ids, (library, path) keys, whole libraries, content hashes, item ids). The counts of
that scope are taken before and after the write, in the same transaction, and the
difference is added when the transaction commits. A write that changes only the state and op
of some items (a call's answer) says so (``Scope.states_only``): one read of those items
and their files before, one of their states after. A write that knows both states adds
the difference itself (:func:`count_item_moves`), from one read of the items' states and
files (:func:`items_with_files`) once it holds them. The scope must name every file and item
whose count the write can change; the property test (tests/ledger/test_counters.py)
compares the kept counts with a full count after random sequences of real operations.
On PostgreSQL the "before" reads lock the scope's items (``FOR SHARE``, in id order): a
worker recording an answer for one of them (which locks it ``FOR UPDATE``) is waited for,
or waits, so two transactions never both count one file's move from one state to another.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Join,
    LargeBinary,
    and_,
    bindparam,
    delete,
    event,
    false,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from syncd.ledger.models import (
    ITEM_FAILED,
    ITEM_SYNCED,
    VERDICT_OK,
    Content,
    File,
    Item,
    LedgerCount,
    Library,
)
from syncd.paths.states import FILE_HELD, FILE_LIVE, FILE_VANISHED

#: shards of the counter rows on PostgreSQL: a transaction writes to one picked at random
SHARDS: Final = 32
#: the per-library kinds, as LibraryStatus names them
LIBRARY_KINDS: Final = ("files", "items", "synced", "pending", "failed", "held")
#: ids (and hashes) per IN (...) list
_CHUNK: Final = 500
#: session.info key of a transaction's deltas not written yet
_DELTAS: Final = "syncd.count_deltas"


#: (library_id, gallery, kind) -> count
Counts = Counter[tuple[int, str, str]]


def item_kind(state: str, op: str | None) -> str:
    """The per-gallery kind of items in ``state`` with intent ``op``."""
    return f"item:{state}:{op or '-'}"


def parse_item_kind(kind: str) -> tuple[str, str | None] | None:
    """(state, op) of an item kind; None for another kind."""
    parts = kind.split(":")
    if len(parts) != 3 or parts[0] != "item":
        return None
    return parts[1], None if parts[2] == "-" else parts[2]


def file_kinds(file_state: str, verdict: str | None, item_state: str | None) -> tuple[str, ...]:
    """The per-library kinds a file counts in (the rules of ``syncd status``)."""
    if file_state == FILE_HELD:
        return ("held",)
    if file_state == FILE_VANISHED:
        return ("pending",)
    if verdict != VERDICT_OK or item_state == ITEM_FAILED:
        return ("files", "failed")
    if item_state == ITEM_SYNCED:
        return ("files", "synced")
    return ("files", "pending")


# -- a scope and its counts ---------------------------------------------------------------------


@dataclass
class Scope:
    """What a write may change: the files and items whose counts are taken before and after.

    Files: by id, by (library id, stored path), whole libraries, by stable conditions
    (``where``: ones the write does not change), and every file holding one of ``hashes``.
    Items: by id, and every item holding a content of a file in scope. ``items``: False
    when the write moves files only between states that hold no item in the counts (held
    and vanished), so the items of the files need not be counted.
    """

    file_ids: set[int] = field(default_factory=set)
    keys: dict[int, set[bytes]] = field(default_factory=dict)
    libraries: set[int] = field(default_factory=set)
    where: list[ColumnElement[bool]] = field(default_factory=list)
    hashes: set[str] = field(default_factory=set)
    item_ids: set[int] = field(default_factory=set)
    items: bool = True
    #: the write changes only the state and op of the items of ``item_ids`` (no file, no
    #: content, no other column the counts read, and no item made or deleted): their files'
    #: kinds follow from the states, read once before and once after
    states_only: bool = False

    def add_keys(self, library_id: int, keys: Iterable[bytes]) -> None:
        self.keys.setdefault(library_id, set()).update(keys)


def _file_terms(scope: Scope) -> list[ColumnElement[bool]]:
    """The conditions whose union is the scope's files (one OR of chunks)."""
    terms: list[ColumnElement[bool]] = []
    ids = sorted(scope.file_ids)
    terms += [File.id.in_(ids[i : i + _CHUNK]) for i in range(0, len(ids), _CHUNK)]
    relpath = type_coerce(File.relpath, LargeBinary)
    for library_id, keys in scope.keys.items():
        ordered = sorted(keys)
        terms += [
            and_(File.library_id == library_id, relpath.in_(ordered[i : i + _CHUNK]))
            for i in range(0, len(ordered), _CHUNK)
        ]
    terms += [File.library_id == library_id for library_id in sorted(scope.libraries)]
    terms += scope.where
    hashes = sorted(scope.hashes)
    terms += [File.content_hash.in_(hashes[i : i + _CHUNK]) for i in range(0, len(hashes), _CHUNK)]
    return terms


def _resolve_items(session: Session, scope: Scope) -> set[int]:
    """The scope's items: its item ids and the items of the contents of its files."""
    found = set(scope.item_ids)
    if not scope.items:
        return found
    for term in _file_terms(scope):
        found.update(
            session.scalars(
                select(Content.item_id)
                .join(File, File.content_hash == Content.content_hash)
                .join(
                    Library, and_(Library.id == File.library_id, Library.gallery == Content.gallery)
                )
                .where(term)
                .distinct()
            )
        )
    return found


def _item_hashes(session: Session, item_ids: Collection[int]) -> set[str]:
    ids = sorted(item_ids)
    hashes: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        hashes.update(
            session.scalars(
                select(Content.content_hash).where(Content.item_id.in_(ids[i : i + _CHUNK]))
            )
        )
    return hashes


def _count_files(session: Session, scope: Scope) -> Counts:
    """The per-library kinds of the scope's files (each file once)."""
    terms = _file_terms(scope)
    counts: Counts = Counter()
    if not terms:
        return counts
    # one query over the union: a file matched by two terms is counted once
    rows = session.execute(
        select(File.library_id, File.state, File.verdict, Item.state, func.count())
        .join(Library, File.library_id == Library.id)
        .outerjoin(
            Content,
            and_(Content.gallery == Library.gallery, Content.content_hash == File.content_hash),
        )
        .outerjoin(Item, Item.id == Content.item_id)
        .where(or_(*terms))
        .group_by(File.library_id, File.state, File.verdict, Item.state)
    )
    for library_id, file_state, verdict, item_state, n in rows:
        for kind in file_kinds(file_state, verdict, item_state):
            counts[(library_id, "", kind)] += n
    return counts


def _count_items(session: Session, item_ids: Collection[int]) -> Counts:
    """For these items: the libraries each has a live file in (``items``), and the items by
    gallery, state and op."""
    counts: Counts = Counter()
    ids = sorted(item_ids)
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        pairs = session.execute(
            select(File.library_id, func.count(func.distinct(Content.item_id)))
            .select_from(Content)
            .join(File, File.content_hash == Content.content_hash)
            # by content hash only: a planner without statistics (SQLite's) would otherwise
            # walk every live file, or a library's, for each item
            .join(
                Library, and_(Library.id == File.library_id + 0, Library.gallery == Content.gallery)
            )
            .where(Content.item_id.in_(chunk), File.state.op("||")("") == FILE_LIVE)
            .group_by(File.library_id)
        )
        for library_id, n in pairs:
            counts[(library_id, "", "items")] += n
        states = session.execute(
            select(Item.gallery, Item.state, Item.op, func.count())
            .where(Item.id.in_(chunk))
            .group_by(Item.gallery, Item.state, Item.op)
        )
        for gallery, state, op, n in states:
            counts[(0, gallery, item_kind(state, op))] += n
    return counts


def _lock_items(session: Session, item_ids: Collection[int]) -> None:
    """PostgreSQL: share-lock the items whose state the counts read (see the module doc)."""
    if session.get_bind().dialect.name != "postgresql" or not item_ids:
        return
    ids = sorted(item_ids)
    for i in range(0, len(ids), _CHUNK):
        session.execute(
            select(Item.id)
            .where(Item.id.in_(ids[i : i + _CHUNK]))
            .order_by(Item.id)
            .with_for_update(read=True)
        ).all()


# -- writes that move items between states only --------------------------------------------------

#: (library id, file state, verdict) of one file of an item, as the counts see it
FileRow = tuple[int, str, str | None]


@dataclass(frozen=True)
class ItemMove:
    """An item whose state and op a write changes, and nothing else the counts read."""

    gallery: str
    #: (state, op) before and after the write
    before: tuple[str, str | None]
    after: tuple[str, str | None]
    #: the files of its contents (see :func:`item_files`)
    files: Sequence[FileRow]


def item_files() -> tuple[Join, tuple[ColumnElement[Any], ...]]:
    """The items joined to the files of their contents, as the counts pair them (a file of
    a library of the content's gallery), and the columns of a :data:`FileRow`.

    A row whose library id is None is no file of the item (an item without files, or a copy
    in a library of another gallery).
    """
    joined = (
        Item.__table__.outerjoin(Content, Content.item_id == Item.id)
        .outerjoin(File, File.content_hash == Content.content_hash)
        # by content hash only (see _count_items)
        .outerjoin(
            Library, and_(Library.id == File.library_id + 0, Library.gallery == Content.gallery)
        )
    )
    return joined, (
        Library.id.label("file_library_id"),
        File.state.label("file_state"),
        File.verdict.label("file_verdict"),
    )


def file_rows(rows: Iterable[Sequence[Any]]) -> dict[int, list[FileRow]]:
    """item id -> its files, from rows ``(item id, library id, file state, verdict)`` of a
    query over :func:`item_files` (every item of the rows has an entry)."""
    out: dict[int, list[FileRow]] = {}
    for item_id, library_id, file_state, verdict in rows:
        files = out.setdefault(int(item_id), [])
        if library_id is not None:
            files.append((int(library_id), str(file_state), verdict))
    return out


def count_item_moves(session: Session, moves: Iterable[ItemMove]) -> None:
    """Add to this transaction's deltas what these items' moves change: the items by state
    and op, and their files' kinds (the item's "items" count in a library does not depend
    on its state)."""
    deltas: Counts = session.info.setdefault(_DELTAS, Counter())
    for move in moves:
        if move.before == move.after:
            continue
        deltas[(0, move.gallery, item_kind(*move.before))] -= 1
        deltas[(0, move.gallery, item_kind(*move.after))] += 1
        if move.before[0] == move.after[0]:
            continue  # the files' kinds follow the state only
        for library_id, file_state, verdict in move.files:
            for kind in file_kinds(file_state, verdict, move.before[0]):
                deltas[(library_id, "", kind)] -= 1
            for kind in file_kinds(file_state, verdict, move.after[0]):
                deltas[(library_id, "", kind)] += 1


@functools.cache
def _items_with_files_statement() -> Any:
    joined, columns = item_files()
    return (
        select(Item.id, Item.gallery, Item.state, Item.op, *columns)
        .select_from(joined)
        .where(Item.id.in_(bindparam("ids", expanding=True)))
    )


def items_with_files(
    connection: Connection | Session, item_ids: Collection[int]
) -> tuple[dict[int, tuple[str, str, str | None]], dict[int, list[FileRow]]]:
    """(item id -> (gallery, state, op), item id -> files) of these items, one query per
    chunk. Run it once the items are locked, as a statement of its own: on PostgreSQL it
    then reads what the transactions it waited for committed (a locking read that joined
    the files would return the files as they were when it started waiting)."""
    states: dict[int, tuple[str, str, str | None]] = {}
    rows: list[Sequence[Any]] = []
    ids = sorted(item_ids)
    for i in range(0, len(ids), _CHUNK):
        chunk = {"ids": ids[i : i + _CHUNK]}
        for item_id, gallery, state, op, *file_columns in connection.execute(
            _items_with_files_statement(), chunk
        ):
            states[item_id] = (gallery, state, op)
            rows.append((item_id, *file_columns))
    return states, file_rows(rows)


def _states(session: Session, item_ids: Collection[int]) -> dict[int, tuple[str, str, str | None]]:
    ids = sorted(item_ids)
    states: dict[int, tuple[str, str, str | None]] = {}
    for i in range(0, len(ids), _CHUNK):
        for item_id, gallery, state, op in session.execute(
            select(Item.id, Item.gallery, Item.state, Item.op).where(
                Item.id.in_(ids[i : i + _CHUNK])
            )
        ):
            states[item_id] = (gallery, state, op)
    return states


def _moves(
    before: Mapping[int, tuple[str, str, str | None]],
    after: Mapping[int, tuple[str, str, str | None]],
    files: Mapping[int, Sequence[FileRow]],
) -> Iterator[ItemMove]:
    for item_id, (gallery, state, op) in before.items():
        now = after.get(item_id)
        if now is None or now[0] != gallery:
            raise AssertionError(f"item {item_id} was deleted or moved in a states-only write")
        yield ItemMove(gallery, (state, op), (now[1], now[2]), files.get(item_id, ()))


@contextmanager
def counted(session: Session, scope: Scope) -> Iterator[Scope]:
    """Keep the counts in step with the writes made inside the block (see the module doc).

    The block may add to ``scope.item_ids`` (items it creates); everything else must be
    named before it starts.
    """
    session.flush()
    if scope.states_only:
        _lock_items(session, scope.item_ids)
        states, files = items_with_files(session, scope.item_ids)
        yield scope
        session.flush()
        count_item_moves(session, _moves(states, _states(session, states), files))
        return
    # items only (a call's answer, a merge, a retry): the files to count are those of the
    # items' contents, and no other item's count moves (another gallery's item of the same
    # bytes keeps its state and its files)
    items_only = not (scope.file_ids or scope.keys or scope.libraries or scope.where)
    items_only = items_only and not scope.hashes
    scope.hashes |= _item_hashes(session, scope.item_ids)
    before_items = set(scope.item_ids) if items_only else _resolve_items(session, scope)
    _lock_items(session, before_items)
    before = _count_files(session, scope) + _count_items(session, before_items)
    yield scope
    session.flush()
    after_items = before_items | (set() if items_only else _resolve_items(session, scope))
    after = _count_files(session, scope)
    after.update(_count_items(session, after_items))
    deltas = session.info.setdefault(_DELTAS, Counter())
    deltas.update(after)
    deltas.subtract(before)


@event.listens_for(Session, "before_commit")
def _write_deltas(session: Session) -> None:
    deltas: Counts | None = session.info.pop(_DELTAS, None)
    if not deltas:
        return
    rows = sorted((key, n) for key, n in deltas.items() if n)
    if not rows:
        return
    connection = session.connection()
    shard = random.randrange(SHARDS) if connection.dialect.name == "postgresql" else 0
    write_counts(connection, shard, rows)


@event.listens_for(Session, "after_rollback")
def _drop_deltas(session: Session) -> None:
    session.info.pop(_DELTAS, None)


def write_counts(
    connection: Connection, shard: int, rows: Iterable[tuple[tuple[int, str, str], int]]
) -> None:
    """Add each delta to its row of ``shard`` (created at 0), in key order (one statement:
    two transactions on one shard lock its rows in the same order)."""
    values = [
        {"shard": shard, "library_id": library_id, "gallery": gallery, "kind": kind, "n": n}
        for (library_id, gallery, kind), n in sorted(rows)
    ]
    if not values:
        return
    connection.execute(_upsert_statement(connection.dialect.name), values)


@functools.cache
def _upsert_statement(dialect: str) -> Any:
    """write_counts' statement for this dialect, built once (every answer's commit runs it)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    statement = upsert(LedgerCount)
    return statement.on_conflict_do_update(
        index_elements=["shard", "library_id", "gallery", "kind"],
        set_={"n": LedgerCount.n + statement.excluded.n},
    )


# -- reading and rebuilding ---------------------------------------------------------------------


def kept_counts(session: Session) -> Counts:
    """Every count the writes keep, summed over the shards (zeros left out)."""
    rows = session.execute(
        select(
            LedgerCount.library_id, LedgerCount.gallery, LedgerCount.kind, func.sum(LedgerCount.n)
        ).group_by(LedgerCount.library_id, LedgerCount.gallery, LedgerCount.kind)
    )
    counts: Counts = Counter({(lib, gallery, kind): int(n) for lib, gallery, kind, n in rows})
    counts.update(_unwritten(session))
    return Counter({key: n for key, n in counts.items() if n})


def full_count(conn: Connection | Session) -> Counts:
    """Every count, counted from the rows themselves (zeros left out): what the kept counts
    must equal, and what a schema upgrade starts them from."""
    counts: Counts = Counter()
    rows = conn.execute(
        select(File.library_id, File.state, File.verdict, Item.state, func.count())
        .join(Library, File.library_id == Library.id)
        .outerjoin(
            Content,
            and_(Content.gallery == Library.gallery, Content.content_hash == File.content_hash),
        )
        .outerjoin(Item, Item.id == Content.item_id)
        .group_by(File.library_id, File.state, File.verdict, Item.state)
    )
    for library_id, file_state, verdict, item_state, n in rows:
        for kind in file_kinds(file_state, verdict, item_state):
            counts[(library_id, "", kind)] += n
    pairs = (
        select(File.library_id.label("library_id"), Content.item_id.label("item_id"))
        .select_from(File)
        .join(Library, File.library_id == Library.id)
        .join(
            Content,
            and_(Content.gallery == Library.gallery, Content.content_hash == File.content_hash),
        )
        .where(File.state == FILE_LIVE)
        .distinct()
        .subquery()
    )
    for library_id, n in conn.execute(
        select(pairs.c.library_id, func.count()).group_by(pairs.c.library_id)
    ):
        counts[(library_id, "", "items")] += n
    for gallery, state, op, n in conn.execute(
        select(Item.gallery, Item.state, Item.op, func.count()).group_by(
            Item.gallery, Item.state, Item.op
        )
    ):
        counts[(0, gallery, item_kind(state, op))] += n
    return Counter({key: n for key, n in counts.items() if n})


def rebuild_counts(conn: Connection) -> None:
    """Set the counts from a full count (a schema upgrade; ``syncd`` never needs it else)."""
    counts = full_count(conn)
    conn.execute(delete(LedgerCount))
    write_counts(conn, 0, counts.items())


def library_counts(session: Session) -> dict[int, dict[str, int]]:
    """library id -> kind -> count, for the per-library kinds."""
    out: dict[int, dict[str, int]] = {}
    rows = session.execute(
        select(LedgerCount.library_id, LedgerCount.kind, func.sum(LedgerCount.n))
        .where(LedgerCount.library_id != 0)
        .group_by(LedgerCount.library_id, LedgerCount.kind)
    )
    for library_id, kind, n in rows:
        out.setdefault(library_id, {})[kind] = int(n or 0)
    for (library_id, _gallery, kind), n in _unwritten(session).items():
        if library_id != 0:
            kinds = out.setdefault(library_id, {})
            kinds[kind] = kinds.get(kind, 0) + n
    return out


def _unwritten(session: Session) -> Counts:
    """This transaction's deltas, written when it commits: its own reads count them."""
    return session.info.get(_DELTAS) or Counter()


def counts_written(session: Session) -> bool:
    """Whether the ``ledger_counts`` rows hold every count this transaction changed (none
    waits to be written at its commit): a read of them alone is then exact."""
    return not any(_unwritten(session).values())


def item_counts(
    session: Session, galleries: Collection[str] | None = None
) -> dict[tuple[str, str, str | None], int]:
    """(gallery, item state, op) -> items, of ``galleries`` (all when None)."""
    query = (
        select(LedgerCount.gallery, LedgerCount.kind, func.sum(LedgerCount.n))
        .where(LedgerCount.library_id == 0)
        .group_by(LedgerCount.gallery, LedgerCount.kind)
    )
    if galleries is not None:
        query = query.where(LedgerCount.gallery.in_(list(galleries)) if galleries else false())
    summed: Counter[tuple[str, str]] = Counter()
    for gallery, kind, n in session.execute(query):
        summed[(gallery, kind)] += int(n or 0)
    for (library_id, gallery, kind), n in _unwritten(session).items():
        if library_id == 0 and (galleries is None or gallery in galleries):
            summed[(gallery, kind)] += n
    out: dict[tuple[str, str, str | None], int] = {}
    for (gallery, kind), n in summed.items():
        parsed = parse_item_kind(kind)
        if parsed is not None and n:
            out[(gallery, parsed[0], parsed[1])] = n
    return out
