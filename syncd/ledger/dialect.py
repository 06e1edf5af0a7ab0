"""The one seam between the ledger and its database engine.

Everything SQLite-specific (connection pragmas, the URL form) lives here; the rest of the
ledger speaks portable SQLAlchemy Core/ORM, so a PostgreSQL ledger needs only this module.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.sqlite import Insert, insert

#: milliseconds a connection waits for another writer before SQLite reports "locked"
BUSY_TIMEOUT_MS = 30_000


def ledger_engine(path: Path) -> Engine:
    """An engine for the SQLite ledger at ``path``: WAL, synchronous=NORMAL, foreign keys on."""
    engine = create_engine(f"sqlite+pysqlite:///{path}", future=True)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions defeat it)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # take the write lock up front: a deferred read-then-write transaction can fail with
    # SQLITE_BUSY when another writer commits in between; WAL readers are never blocked
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def writer_gate() -> AbstractContextManager[Any]:
    """What the threads of one process hold while in a transaction: SQLite has one writer
    at a time, and a thread that queues on this lock is woken the moment it is free, where
    SQLite's busy handler sleeps 1 to 100 ms between tries."""
    return threading.RLock()


def insert_or_ignore(table: Any) -> Insert:
    """An INSERT that skips rows whose primary key or unique key is already there."""
    return insert(table).on_conflict_do_nothing()
