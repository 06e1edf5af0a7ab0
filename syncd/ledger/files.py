"""The ledger's file rows: what the scanner reads to skip unchanged files and writes back.

Each write queues the contents it touches for the planner in the same transaction
(``syncd.ledger.intents``), so a crash between scan and plan loses nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session, aliased

from syncd.config import LibraryConfig
from syncd.ledger.counters import Scope, counted
from syncd.ledger.dialect import stream_rows
from syncd.ledger.intents import queue_contents
from syncd.ledger.models import VERDICT_OK, VERDICT_SKIPPED, Content, File, Item, Library
from syncd.ledger.schema import Ledger
from syncd.paths.identity import FileIdentity, file_identity, file_signature
from syncd.paths.relpath import encode_relpath
from syncd.paths.states import FILE_HELD, FILE_LIVE, FILE_VANISHED

# the walk and the ledger compare one number per file: one definition of it
from syncd.speedups import collector_paused

_MASK64 = (1 << 64) - 1
#: the signature of a row that must be looked at again whatever the disk says
NO_SIGNATURE = -1
#: rows per IN (...) list, well under every database's bound-parameter limit
IN_CHUNK = 500
#: paths per query of rows at or below paths (five bound parameters each)
PATHS_CHUNK = 100
#: a scan that vanishes fewer files than this holds none of their deletes, whatever share of
#: the library they are: deleting 1 of 2 files is an edit, not an unmounted share
MASS_VANISH_FLOOR = 10


def _signed64(value: int) -> int:
    """An unsigned 64-bit number (inodes can use the top bit) as the signed int SQL stores."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True, slots=True)
class Observation:
    """What a look at one path found. Sizes in bytes, mtime in ns since the epoch."""

    relpath: str
    size: int
    mtime_ns: int
    inode: int
    #: sha256 hex; None when the file could not be read
    content_hash: str | None
    #: "ok", "rejected" (not an image the gallery takes) or "skipped" (not readable)
    verdict: str
    reason: str | None = None
    #: st_dev of the file (None: not known)
    dev: int | None = None


@dataclass(frozen=True, slots=True)
class KnownContent:
    """What the ledger knows of the bytes of a file with a given identity."""

    content_hash: str
    verdict: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class LibraryRow:
    """A library as the ledger knows it."""

    id: int
    name: str
    gallery: str


@dataclass
class LedgerIndex:
    """One library's rows for change detection, kept compact for a million files.

    ``signatures``: stored path (bytes) -> :func:`file_signature` of live and held rows;
    ``vanished``: stored paths of rows already vanished.
    """

    signatures: dict[bytes, int]
    vanished: set[bytes]


def ensure_library(session: Session, lib: LibraryConfig) -> LibraryRow:
    """The library's row, created on first sight; a changed gallery re-plans its contents."""
    row = session.scalars(select(Library).where(Library.name == lib.name)).one_or_none()
    if row is None:
        row = Library(name=lib.name, gallery=lib.gallery, root=str(lib.root))
        session.add(row)
        session.flush()
    elif row.gallery != lib.gallery or row.root != str(lib.root):
        if row.gallery != lib.gallery:
            _move_library(session, row, lib)
        row.root = str(lib.root)
    return LibraryRow(row.id, row.name, row.gallery)


def _move_library(session: Session, row: Library, lib: LibraryConfig) -> None:
    """The library feeds another gallery now: its contents are planned again in both."""
    hashes = list(
        session.scalars(
            select(File.content_hash)
            .where(
                File.library_id == row.id,
                File.verdict == VERDICT_OK,
                File.content_hash.is_not(None),
            )
            .distinct()
        )
    )
    for gallery in (row.gallery, lib.gallery):
        for start in range(0, len(hashes), IN_CHUNK):
            chunk = [h for h in hashes[start : start + IN_CHUNK] if h is not None]
            queue_contents(session, gallery, chunk)
    # its files now join the other gallery's contents: every count of the library moves.
    # The items of its contents in both galleries are named: which of them the library's
    # files reach depends on the gallery being changed, and an item reached only after (or
    # only before) must be counted on both sides, or its state would count twice.
    items: set[int] = set()
    galleries = [row.gallery, lib.gallery]
    for start in range(0, len(hashes), IN_CHUNK):
        chunk = [h for h in hashes[start : start + IN_CHUNK] if h is not None]
        items.update(
            session.scalars(
                select(Content.item_id).where(
                    Content.gallery.in_(galleries), Content.content_hash.in_(chunk)
                )
            )
        )
    with counted(session, Scope(libraries={row.id}, item_ids=items)):
        row.gallery = lib.gallery


def load_index(ledger: Ledger, library_id: int, under: Sequence[str] | None = None) -> LedgerIndex:
    """The library's rows as a compact dict for change detection.

    With ``under`` (paths relative to the root), only the rows at or below those paths: what
    a targeted scan compares. The hot read of a no-change rescan: a plain DB-API cursor over
    one indexed query, no ORM objects, one small int per row.
    """
    if under is not None:
        return _load_index_under(ledger, library_id, under)
    sendable = (File.state == FILE_LIVE) & File.content_hash.is_not(None)
    mine = File.library_id == library_id
    vanished: set[bytes] = set()
    with ledger.connection() as conn, collector_paused():
        cursor = stream_rows(
            conn, select(File.relpath, File.size, File.mtime_ns, File.inode).where(mine, sendable)
        )
        signatures = {
            bytes(path): file_signature(size, mtime_ns, inode)
            for path, size, mtime_ns, inode in cursor
        }
        # the other rows of all libraries, found through the state and content_hash indexes:
        # naming the library would make SQLite read all its rows a second time
        other = File.state.in_([FILE_VANISHED, FILE_HELD]) | File.content_hash.is_(None)
        cursor = stream_rows(conn, select(File.library_id, File.relpath, File.state).where(other))
        for library, path, state in cursor:
            if library != library_id:
                continue
            if state == FILE_VANISHED:
                vanished.add(bytes(path))
            else:
                signatures[bytes(path)] = NO_SIGNATURE
    return LedgerIndex(signatures, vanished)


def _load_index_under(ledger: Ledger, library_id: int, under: Sequence[str]) -> LedgerIndex:
    """``load_index`` restricted to the rows at or below ``under``."""
    signatures: dict[bytes, int] = {}
    vanished: set[bytes] = set()
    relpath = type_coerce(File.relpath, LargeBinary)
    keys = [encode_relpath(rel) for rel in under]
    with ledger.connection() as conn:
        for start in range(0, len(keys), PATHS_CHUNK):
            rows = conn.execute(
                select(
                    relpath, File.size, File.mtime_ns, File.inode, File.state, File.content_hash
                ).where(rows_at_or_below(library_id, keys[start : start + PATHS_CHUNK]))
            )
            for path, size, mtime_ns, inode, state, content_hash in rows:
                if state == FILE_VANISHED:
                    vanished.add(bytes(path))
                elif state == FILE_LIVE and content_hash is not None:
                    signatures[bytes(path)] = file_signature(size, mtime_ns, inode)
                else:
                    signatures[bytes(path)] = NO_SIGNATURE
    return LedgerIndex(signatures, vanished)


def rows_at_or_below(library_id: int, keys: Sequence[bytes]) -> ColumnElement[bool]:
    """The library's rows at the stored paths ``keys`` or below them (``key + b"/"...``).

    Each term names the library, so SQLite answers the OR from the (library, relpath)
    index, one range per path.
    """
    relpath = type_coerce(File.relpath, LargeBinary)
    mine = File.library_id == library_id
    terms: list[ColumnElement[bool]] = []
    for key in keys:
        # b"0" follows b"/": the range holds every path that continues key with "/"
        terms += [
            and_(mine, relpath == key),
            and_(mine, relpath >= key + b"/", relpath < key + b"0"),
        ]
    return or_(*terms)


def known_contents(
    session: Session,
    library_id: int,
    identities: Collection[FileIdentity],
    relpaths: Collection[bytes] = (),
) -> dict[FileIdentity, KnownContent]:
    """What the ledger knows of the bytes of files with these identities.

    Looked for among the library's rows at the stored paths ``relpaths`` (paths a scan has
    not found yet: the file may have moved from there) and among its vanished and held
    rows. A file with the identity of a row is that row's file, moved or linked (the same
    trust a rescan puts in size, mtime_ns and inode at one path), so its bytes need no
    second read. Identities whose rows disagree are left out.
    """
    if not identities:
        return {}
    wanted = set(identities)
    columns = (
        File.library_id,
        File.dev,
        File.inode,
        File.size,
        File.mtime_ns,
        File.content_hash,
        File.verdict,
        File.verdict_reason,
    )
    known = (File.dev.is_not(None), File.content_hash.is_not(None))
    # no library in this query: SQLite would pick the (library, relpath) index and read the
    # whole library instead of the few vanished rows
    gone = File.state.in_([FILE_VANISHED, FILE_HELD])
    inodes = sorted({_signed64(identity[1]) for identity in wanted})
    queries = [
        select(*columns).where(gone, *known, File.inode.in_(inodes[start : start + IN_CHUNK]))
        for start in range(0, len(inodes), IN_CHUNK)
    ]
    keys = list(relpaths)
    relpath = type_coerce(File.relpath, LargeBinary)
    queries += [
        select(*columns).where(
            File.library_id == library_id, *known, relpath.in_(keys[start : start + IN_CHUNK])
        )
        for start in range(0, len(keys), IN_CHUNK)
    ]
    found: dict[FileIdentity, KnownContent | None] = {}
    for query in queries:
        for lib, dev, inode, size, mtime_ns, content_hash, verdict, reason in session.execute(
            query
        ):
            if lib != library_id or dev is None or content_hash is None or verdict is None:
                continue  # another library's row, or one the query excludes already
            identity = file_identity(dev, inode, size, mtime_ns)
            if identity not in wanted:
                continue
            content = KnownContent(content_hash, verdict, reason)
            found[identity] = content if found.get(identity, content) == content else None
    return {identity: c for identity, c in found.items() if c is not None}


def count_files(session: Session, library_id: int) -> int:
    """Files the ledger holds in the library: its live and held rows."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(File)
            .where(File.library_id == library_id, File.state.in_([FILE_LIVE, FILE_HELD]))
        )
        or 0
    )


def count_files_under(session: Session, library_id: int, relpath: str) -> int:
    """Files the ledger holds in the library (live and held rows) at or below ``relpath``
    (relative to the root)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(File)
            .where(
                rows_at_or_below(library_id, [encode_relpath(relpath)]),
                File.state.in_([FILE_LIVE, FILE_HELD]),
            )
        )
        or 0
    )


@dataclass(frozen=True, slots=True)
class ItemsLeft:
    """What becomes of the items of some vanished files: ``deleted``: items in the gallery
    that no other file holds (deleted once ``delete_grace`` has passed); ``kept``: items
    another live or held file (a copy, or an image the gallery took for the same) keeps."""

    deleted: int
    kept: int


def items_left_by(session: Session, library: LibraryRow, keys: Sequence[bytes]) -> ItemsLeft:
    """:class:`ItemsLeft` of the vanished rows of ``library`` at the stored paths ``keys``."""
    relpath = type_coerce(File.relpath, LargeBinary)
    hashes: set[str] = set()
    for start in range(0, len(keys), IN_CHUNK):
        hashes.update(
            h
            for h in session.scalars(
                select(File.content_hash)
                .where(
                    File.library_id == library.id,
                    relpath.in_(keys[start : start + IN_CHUNK]),
                    File.state == FILE_VANISHED,
                    File.verdict == VERDICT_OK,
                )
                .distinct()
            )
            if h is not None
        )
    ordered = sorted(hashes)
    items: dict[int, bool] = {}  # item id -> whether the gallery holds it
    for start in range(0, len(ordered), IN_CHUNK):
        for item_id, cont_sign in session.execute(
            select(Content.item_id, Item.cont_sign)
            .join(Item, Item.id == Content.item_id)
            .where(
                Content.gallery == library.gallery,
                Content.content_hash.in_(ordered[start : start + IN_CHUNK]),
            )
        ):
            items[item_id] = cont_sign is not None
    ids = sorted(items)
    kept: set[int] = set()
    for start in range(0, len(ids), IN_CHUNK):
        kept.update(
            session.scalars(
                select(Content.item_id)
                .join(File, File.content_hash == Content.content_hash)
                .join(Library, Library.id == File.library_id)
                .where(
                    Content.gallery == library.gallery,
                    Content.item_id.in_(ids[start : start + IN_CHUNK]),
                    Library.gallery == library.gallery,
                    File.state.in_([FILE_LIVE, FILE_HELD]),
                    File.verdict == VERDICT_OK,
                )
                .distinct()
            )
        )
    deleted = sum(1 for item_id, held in items.items() if held and item_id not in kept)
    return ItemsLeft(deleted, len(kept))


def record_observations(
    session: Session, library: LibraryRow, observations: Sequence[Observation], now: float
) -> None:
    """Write what a scan found at these paths; queue the contents whose files changed.

    A path that could not be read keeps the row it had (its item stays); a path never seen
    before gets a row either way, so ``status --failed`` can show why it is not synced.
    """
    for start in range(0, len(observations), IN_CHUNK):
        _record_chunk(session, library, observations[start : start + IN_CHUNK], now)


def _record_chunk(
    session: Session, library: LibraryRow, chunk: Sequence[Observation], now: float
) -> None:
    keys = [encode_relpath(o.relpath) for o in chunk]
    scope = Scope(hashes={o.content_hash for o in chunk if o.content_hash})
    scope.add_keys(library.id, keys)
    with counted(session, scope):
        _write_chunk(session, library, chunk, keys, now)


def _write_chunk(
    session: Session,
    library: LibraryRow,
    chunk: Sequence[Observation],
    keys: Sequence[bytes],
    now: float,
) -> None:
    existing = {
        encode_relpath(row.relpath): row
        for row in session.execute(
            select(File.id, File.relpath, File.content_hash, File.verdict, File.state).where(
                File.library_id == library.id,
                type_coerce(File.relpath, LargeBinary).in_(keys),
            )
        )
    }
    inserts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    touched: list[str] = []
    for key, obs in zip(keys, chunk, strict=True):
        old = existing.get(key)
        values: dict[str, object] = {
            "size": obs.size,
            "mtime_ns": obs.mtime_ns,
            "inode": _signed64(obs.inode),
            "dev": None if obs.dev is None else _signed64(obs.dev),
            "content_hash": obs.content_hash,
            "verdict": obs.verdict,
            "verdict_reason": obs.reason,
            "state": FILE_LIVE,
            "vanished_at": None,
        }
        new_hash = obs.content_hash if obs.verdict == VERDICT_OK else None
        if old is None:
            inserts.append(
                values | {"library_id": library.id, "relpath": obs.relpath, "first_seen_at": now}
            )
            if new_hash:
                touched.append(new_hash)
            continue
        if obs.verdict == VERDICT_SKIPPED and old.content_hash is not None:
            continue
        updates.append(values | {"id": old.id})
        old_hash = old.content_hash if old.verdict == VERDICT_OK else None
        unchanged = old_hash == new_hash and old.state == FILE_LIVE
        if old_hash and not unchanged:
            successor = new_hash if new_hash != old_hash else None
            queue_contents(session, library.gallery, [old_hash], successor)
        if new_hash and not unchanged:
            touched.append(new_hash)
    queue_contents(session, library.gallery, touched)
    if inserts:
        session.execute(insert(File), inserts)
    if updates:
        session.execute(update(File), updates)


def record_vanished(
    session: Session, library: LibraryRow, keys: Sequence[bytes], now: float
) -> int:
    """Mark these stored paths (see :class:`LedgerIndex`) vanished at ``now`` (seconds).

    Rows that never held a sendable content simply go; held rows stay held. Returns how
    many files vanished now.
    """
    count = 0
    for start in range(0, len(keys), IN_CHUNK):
        chunk = keys[start : start + IN_CHUNK]
        where = (
            File.library_id == library.id,
            type_coerce(File.relpath, LargeBinary).in_(chunk),
            File.state == FILE_LIVE,
        )
        sendable = (File.verdict == VERDICT_OK) & File.content_hash.is_not(None)
        hashes = session.scalars(select(File.content_hash).where(*where, sendable).distinct())
        queue_contents(session, library.gallery, [h for h in hashes if h is not None])
        scope = Scope()
        scope.add_keys(library.id, chunk)
        with counted(session, scope):
            dropped = session.execute(delete(File).where(*where, ~sendable))
            marked = session.execute(
                update(File).where(*where).values(state=FILE_VANISHED, vanished_at=now)
            )
        count += _rowcount(dropped) + _rowcount(marked)
    return count


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def hold_mass_vanish(
    session: Session,
    library: LibraryRow,
    known_files: int,
    now: float,
    delete_grace: float,
    max_fraction: float,
) -> int:
    """Hold the deletes of a scan that vanished too much of a library (docs/rules.md, Mass
    deletes).

    Files vanished at ``now`` whose content did not show up at a new path of the same
    gallery (a move) count; when they are more than ``max_fraction`` of the files the
    library had (``known_files``) and at least ``MASS_VANISH_FLOOR``, they become "held"
    and keep their items. Returns how many were held.
    """
    other = aliased(File)
    other_lib = aliased(Library)
    moved = exists().where(
        other.content_hash == File.content_hash,
        other.state == FILE_LIVE,
        other.first_seen_at >= now - delete_grace,
        other.library_id == other_lib.id,
        other_lib.gallery == library.gallery,
    )
    gone = (
        File.library_id == library.id,
        File.state == FILE_VANISHED,
        File.vanished_at == now,
        ~moved,
    )
    count = int(session.scalar(select(func.count()).select_from(File).where(*gone)) or 0)
    if count < MASS_VANISH_FLOOR or count <= max_fraction * known_files:
        return 0
    # vanished -> held: neither is live, no item count moves
    stable = [File.library_id == library.id, File.vanished_at == now]
    with counted(session, Scope(where=[and_(*stable)], items=False)):
        session.execute(update(File).where(*gone).values(state=FILE_HELD))
    return count


def release_holds(session: Session, library_id: int, now: float, delete_grace: float) -> int:
    """Let the held deletes of a library go now (``reconcile --allow-mass-delete``)."""
    hashes = session.scalars(
        select(File.content_hash)
        .where(File.library_id == library_id, File.state == FILE_HELD)
        .distinct()
    ).all()
    # held -> vanished: neither is live, no item count moves
    stable = and_(File.library_id == library_id, File.state.in_([FILE_HELD, FILE_VANISHED]))
    with counted(session, Scope(where=[stable], items=False)):
        result = session.execute(
            update(File)
            .where(File.library_id == library_id, File.state == FILE_HELD)
            .values(state=FILE_VANISHED, vanished_at=now - delete_grace)
        )
    gallery = session.scalar(select(Library.gallery).where(Library.id == library_id))
    if gallery is not None:
        queue_contents(session, gallery, [h for h in hashes if h is not None])
    return _rowcount(result)
