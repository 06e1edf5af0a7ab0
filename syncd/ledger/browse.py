"""What the web console reads from the ledger, and the two writes it asks for.

Reads go through a :class:`LedgerReader`: deferred, query-only transactions, so a page never
takes the writer's lock away from the sync. Every listing is bounded (``limit`` rows) and
runs on an index, so a page stays fast on a ledger of a million files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from syncd.config import LedgerConfig
from syncd.ledger.dialect import postgresql_engine, reader_engine
from syncd.ledger.files import release_holds
from syncd.ledger.models import (
    ITEM_FAILED,
    VERDICT_OK,
    VERDICT_REJECTED,
    VERDICT_SKIPPED,
    Content,
    File,
    Item,
    Library,
)
from syncd.paths.states import FILE_HELD, FILE_LIVE


class LedgerReader:
    """Read-only sessions on the ledger ``where`` names: a SQLite file (opened once it
    exists) or the ``[ledger]`` config (SQLite at ``path``, or PostgreSQL at ``url``)."""

    def __init__(self, where: Path | LedgerConfig) -> None:
        self._config = where if isinstance(where, LedgerConfig) else LedgerConfig(path=where)
        self.path = self._config.path
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    def exists(self) -> bool:
        """Whether the ledger is there (a first ``reconcile`` makes a SQLite one)."""
        return bool(self._config.url) or self.path.exists()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session in one short read transaction (a consistent snapshot), rolled back at
        the end. Raises FileNotFoundError when a SQLite ledger does not exist yet."""
        if self._sessions is None:
            if not self.exists():
                raise FileNotFoundError(str(self.path))
            if self._config.url:
                # PostgreSQL readers take no lock a writer waits for
                self._engine = postgresql_engine(self._config.url, self._config.password or None)
            else:
                self._engine = reader_engine(self.path)
            self._sessions = sessionmaker(self._engine)
        with self._sessions() as session, session.begin():
            yield session
            session.rollback()

    def close(self) -> None:
        """Release the connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._sessions = None


# -- failures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedFile:
    """A live file that is not synced for a reason: refused by the scan, or its call failed."""

    id: int
    library: str
    relpath: str
    reason: str


@dataclass(frozen=True)
class FailurePage:
    """How many files failed, and the first ``limit`` of them (library, path order)."""

    total: int
    files: list[FailedFile] = field(default_factory=list)


def failed_files(session: Session, library: str | None = None, limit: int = 500) -> FailurePage:
    """Failed files of ``library`` (all when None): the refused ones (found by the verdict
    index), then those whose item failed (found by the item state index)."""
    # SQLite has no statistics to choose by: ``_unindexed`` keeps it on the selective index
    # (the few refused files; the few failed items), not on the state of a million files
    refused = (
        select(File.id, Library.name, File.relpath, File.verdict, File.verdict_reason)
        .join(Library, File.library_id == Library.id)
        .where(
            File.verdict.in_([VERDICT_REJECTED, VERDICT_SKIPPED]),
            _unindexed(File.state) == FILE_LIVE,
        )
    )
    calls = _files_of_items(
        File.id, Library.name, File.relpath, Item.error_code, Item.error_message
    ).where(
        Item.state == ITEM_FAILED,
        _unindexed(File.state) == FILE_LIVE,
        _unindexed(File.verdict) == VERDICT_OK,
    )
    if library is not None:
        refused = refused.where(Library.name == library)
        calls = calls.where(Library.name == library)
    total = 0
    files: list[FailedFile] = []
    for query, describe in ((refused, _refusal), (calls, _call_failure)):
        total += int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        left = limit - len(files)
        if left <= 0:
            continue
        rows = session.execute(query.order_by(Library.name, File.relpath).limit(left))
        files += [FailedFile(fid, lib, rel, describe(a, b)) for fid, lib, rel, a, b in rows]
    return FailurePage(total, files)


def _files_of_items(*columns: Any) -> Select[Any]:
    """``columns`` of items joined to the files that hold them (by content and gallery)."""
    return (
        select(*columns)
        .select_from(Item)
        .join(Content, Content.item_id == Item.id)
        .join(File, File.content_hash == Content.content_hash)
        .join(Library, and_(File.library_id == Library.id, Library.gallery == Content.gallery))
    )


def _unindexed(column: Any) -> Any:
    """``column || ''``: the same value, which SQLite's planner will not look up by index."""
    return column.op("||")("")


def _refusal(verdict: object, reason: object) -> str:
    return str(reason or verdict or "refused")


def _call_failure(code: object, message: object) -> str:
    return f"error {code}: {message}" if code is not None else str(message or "failed")


# -- held deletes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldLibrary:
    """A library whose deletes a mass vanish held: how many, and the first paths."""

    name: str
    count: int
    relpaths: list[str] = field(default_factory=list)


def held_deletes(session: Session, limit: int = 200) -> list[HeldLibrary]:
    """Libraries with held deletes (by name), each with its first ``limit`` paths."""
    counts = session.execute(
        select(Library.name, Library.id, func.count())
        .join(File, File.library_id == Library.id)
        .where(File.state == FILE_HELD)
        .group_by(Library.name, Library.id)
        .order_by(Library.name)
    ).all()
    held = []
    for name, library_id, count in counts:
        paths = session.scalars(
            select(File.relpath)
            # by the state index (the held few), not by the library's million paths
            .where(File.library_id + 0 == library_id, File.state == FILE_HELD)
            .order_by(File.relpath)
            .limit(limit)
        )
        held.append(HeldLibrary(name, int(count), list(paths)))
    return held


def release_held_deletes(session: Session, library: str, now: float, delete_grace: float) -> int:
    """Let ``library``'s held deletes go (as ``reconcile --allow-mass-delete``): recorded in
    the ledger, so the next sync pass deletes their items. Returns how many; 0 for a library
    the ledger does not know. ``now`` and ``delete_grace`` in seconds."""
    library_id = session.scalar(select(Library.id).where(Library.name == library))
    if library_id is None:
        return 0
    return release_holds(session, library_id, now, delete_grace)


# -- files by id ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileLocation:
    """Where a file the ledger knows lives: its library, root (as scanned) and relative path,
    with the stat signature it was last seen with (a cache key for its thumbnail)."""

    id: int
    library: str
    root: str
    relpath: str
    size: int
    mtime_ns: int
    inode: int


def file_by_id(session: Session, file_id: int) -> FileLocation | None:
    """The live file ``file_id``, or None when the ledger holds no such live file."""
    row = session.execute(
        select(
            File.id, Library.name, Library.root, File.relpath, File.size, File.mtime_ns, File.inode
        )
        .join(Library, File.library_id == Library.id)
        .where(File.id == file_id, File.state == FILE_LIVE)
    ).one_or_none()
    return None if row is None else FileLocation(*row)


@dataclass(frozen=True)
class FileRef:
    """A live file holding an item: its id (for a thumbnail), library and relative path."""

    id: int
    library: str
    relpath: str


def files_of_item(
    session: Session, gallery: str, cont_sign: str, libraries: Sequence[str]
) -> list[FileRef]:
    """The live files of ``libraries`` whose content is the item ``cont_sign`` of
    ``gallery``, oldest first (the brief names the first)."""
    rows = session.execute(
        _files_of_items(File.id, Library.name, File.relpath)
        .where(
            Item.gallery == gallery,
            Item.cont_sign == cont_sign,
            File.state == FILE_LIVE,
            File.verdict == VERDICT_OK,
            Library.name.in_(libraries),
        )
        .order_by(File.first_seen_at, Library.name, File.relpath)
    )
    return [FileRef(fid, lib, rel) for fid, lib, rel in rows]
