"""A rehearsal of the ledger: what ``reconcile --dry-run`` scans and plans into, then throws
away, so the next run finds the ledger as the dry run found it and reports the same.

SQLite: a snapshot copy of the ledger file in a temporary folder (SQLite's online backup:
the ledger itself is only read, a running service is never kept waiting, and a ledger that
does not exist yet is not created: the rehearsal starts from an empty one). PostgreSQL: one
connection whose transaction is rolled back at the end, each transaction of the rehearsal
a savepoint inside it (the database gets the tables if it had none, as any command does).
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.orm import sessionmaker

from syncd.config import LedgerConfig
from syncd.ledger.schema import Ledger, LedgerError, open_ledger


@contextmanager
def rehearsal(where: LedgerConfig) -> Iterator[Ledger]:
    """A ledger holding what the configured one holds, whose writes are all thrown away
    when the block ends (see the module docstring). Nothing is ever committed to the
    configured ledger, except the empty tables of a PostgreSQL database that had none.

    Raises LedgerError when the ledger cannot be opened or read.
    """
    if where.url:
        ledger = open_ledger(where)
        try:
            with ledger.engine.connect() as conn:
                outer = conn.begin()
                try:
                    yield _RolledBack(ledger, conn)
                finally:
                    outer.rollback()
        finally:
            ledger.close()
        return
    with tempfile.TemporaryDirectory(prefix="syncd-dry-run-") as scratch:
        copy = Path(scratch) / where.path.name
        if where.path.exists():
            _snapshot(where.path, copy)
        ledger = open_ledger(copy)
        # local state (the add spool, the sync lock) stays named after the real ledger
        ledger.path, ledger.where = where.path, str(where.path)
        try:
            yield ledger
        finally:
            ledger.close()


def _snapshot(path: Path, copy: Path) -> None:
    """Copy the SQLite ledger at ``path`` to ``copy`` as one consistent snapshot."""
    try:
        with (
            closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as src,
            closing(sqlite3.connect(copy)) as dst,
        ):
            src.execute("PRAGMA busy_timeout = 30000")
            src.backup(dst)
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: cannot read the ledger: {exc}") from None


class _RolledBack(Ledger):
    """The ledger seen through one connection whose transaction the rehearsal rolls back:
    each :meth:`transaction` is a savepoint in it, bulk reads use it too (they must see
    what the rehearsal wrote)."""

    def __init__(self, ledger: Ledger, conn: Connection) -> None:
        super().__init__(ledger.engine, ledger.path, ledger.where)
        self._conn = conn
        self._sessions = sessionmaker(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        # one connection: one thread at a time
        self._gate = threading.RLock()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        yield self._conn

    def close(self) -> None:
        """Nothing: the rehearsal closes the ledger when it ends."""
