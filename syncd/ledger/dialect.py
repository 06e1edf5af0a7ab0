"""The one seam between the ledger and its database engine: SQLite or PostgreSQL.

Everything engine-specific lives here behind named functions: the engines and their
connection setup (SQLite pragmas and ``BEGIN IMMEDIATE``; the PostgreSQL URL as users write
it and its password), the in-process writer gate SQLite needs, insert-or-ignore, the raw
cursor fast path of bulk reads, bulk loads, the schema-upgrade lock, and the scrubbing of
database errors (which may quote a URL). The rest of the ledger speaks portable SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, Select, Table, create_engine, event, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert

from syncd.errors import SyncdError

#: milliseconds a connection waits for another writer before SQLite reports "locked"
BUSY_TIMEOUT_MS = 30_000
#: the URL schemes of a PostgreSQL ledger, as libpq accepts them
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")
#: seconds a PostgreSQL connection attempt may take before it fails (libpq connect_timeout)
CONNECT_TIMEOUT_S = 10
#: rows a PostgreSQL bulk read fetches per round trip
FETCH_ROWS = 20_000
#: the pg_advisory_xact_lock key schema upgrades hold (any fixed number; "syncd" in ASCII)
SCHEMA_LOCK_KEY = 0x73796E6364


class LedgerUrlError(SyncdError):
    """``ledger.url`` cannot be understood (the text never quotes a password)."""


def is_postgresql_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL ledger."""
    return url.startswith(POSTGRESQL_SCHEMES)


def is_postgresql(engine_or_conn: Engine | Connection) -> bool:
    """Whether this engine (or connection) is on PostgreSQL (else SQLite)."""
    return engine_or_conn.dialect.name == "postgresql"


# -- engines -------------------------------------------------------------------------------


def ledger_engine(path: Path) -> Engine:
    """An engine for the SQLite ledger at ``path``: WAL, synchronous=NORMAL, foreign keys on."""
    engine = create_engine(f"sqlite+pysqlite:///{path}", future=True)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def reader_engine(path: Path) -> Engine:
    """A read-only engine on the SQLite ledger at ``path`` (pages that only look): it never
    writes and, in WAL mode, never waits for the writer nor makes it wait."""
    engine = create_engine(f"sqlite+pysqlite:///file:{path}?mode=ro&uri=true", future=True)
    event.listen(engine, "connect", _sqlite_reader_pragmas)
    return engine


def _sqlite_reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions defeat it)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def sqlite_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked": another process held the file past
    the busy timeout, or switched it to WAL (that step calls no busy handler)."""
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)


def _sqlite_begin(connection: Any) -> None:
    # take the write lock up front: a deferred read-then-write transaction can fail with
    # SQLITE_BUSY when another writer commits in between; WAL readers are never blocked
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def postgresql_url(url: str, password: str | None = None) -> URL:
    """SQLAlchemy's ``postgresql+psycopg`` form of a libpq URL as users write it.

    Takes every form libpq takes (``postgresql://user@host:port/db``, host names, IPv6,
    ``postgresql:///db?host=/run/postgresql``, a percent-encoded socket folder as host,
    several hosts, ``sslmode`` and the other parameters), because libpq itself parses it.
    ``password``: None leaves it to libpq (``PGPASSFILE``, ``~/.pgpass``).
    """
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    if not is_postgresql_url(url):
        raise LedgerUrlError("ledger.url: expected a postgresql:// URL")
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    except ProgrammingError as exc:
        raise LedgerUrlError(f"ledger.url: not a valid PostgreSQL URL: {_first_line(exc)}") from None
    if "password" in params:
        raise LedgerUrlError(
            "ledger.url: holds a password; put it in ledger.password_file or "
            "$SYNCD_LEDGER_PASSWORD instead"
        )
    user = params.pop("user", None)
    dbname = params.pop("dbname", None)
    params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    params.setdefault("application_name", "syncd")
    # host and port stay query parameters: libpq's own, so sockets and host lists pass as-is
    return URL.create(
        "postgresql+psycopg",
        username=user,
        password=password or None,
        database=dbname,
        query=params,
    )


def postgresql_engine(url: str, password: str | None = None) -> Engine:
    """An engine for the PostgreSQL ledger at ``url`` (libpq form, see :func:`postgresql_url`).

    Connections are checked before use, so a database restart costs one failed
    transaction, not a dead pool.
    """
    try:
        engine = create_engine(
            postgresql_url(url, password),
            pool_pre_ping=True,
            # no server-side prepared statements: a generic plan of "IN (<1000 binds>)"
            # scans the array for every row, a plan made for the values hashes it once
            connect_args={"prepare_threshold": None},
            future=True,
        )
    except ArgumentError as exc:
        raise LedgerUrlError(f"ledger.url: {scrub(exc, password)}") from None
    # many-row INSERTs as multi-row VALUES statements, as with RETURNING: one round trip and
    # one statement per 1000 rows, where psycopg's executemany runs one per row
    engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def describe_url(url: str) -> str:
    """``url`` as a log line or ``status`` may show it: any password replaced by ``***``."""
    return re.sub(r"(://[^:/@?]*):[^@/?]*@", r"\1:***@", url)


# -- transactions --------------------------------------------------------------------------


def writer_gate(engine: Engine) -> AbstractContextManager[Any]:
    """What the threads of one process hold while in a transaction.

    SQLite has one writer at a time, and a thread that queues on this lock is woken the
    moment it is free, where SQLite's busy handler sleeps 1 to 100 ms between tries.
    PostgreSQL locks rows, not the database: no gate.
    """
    if is_postgresql(engine):
        return contextlib.nullcontext()
    return threading.RLock()


def upgrade_lock(conn: Connection) -> None:
    """Hold the schema-upgrade lock until ``conn``'s transaction ends.

    PostgreSQL: a transaction-level advisory lock, so one host creates or upgrades the
    tables while the others wait here, then see the current schema. SQLite: the
    transaction's ``BEGIN IMMEDIATE`` is the lock already.
    """
    if is_postgresql(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


# -- statements ----------------------------------------------------------------------------


class _InsertOrIgnore(Insert):
    """An INSERT that skips rows whose primary or unique key is already there."""

    inherit_cache = True


@compiles(_InsertOrIgnore)
def _compile_insert_or_ignore(insert: _InsertOrIgnore, compiler: SQLCompiler, **kw: Any) -> str:
    # one spelling both engines take (SQLite >= 3.24, PostgreSQL >= 9.5)
    sql: str = compiler.visit_insert(insert, **kw)  # type: ignore[no-untyped-call]
    return sql + " ON CONFLICT DO NOTHING"


def insert_or_ignore(table: Any) -> Insert:
    """An INSERT that skips rows whose primary key or unique key is already there."""
    return _InsertOrIgnore(table)


def stream_rows(conn: Connection, query: Select[*tuple[Any, ...]]) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` as plain tuples straight from the driver: the fast path of a
    bulk read of a million rows (no result processing; paths come as raw bytes).

    The query's constants are inlined. SQLite: a DB-API cursor, read lazily. PostgreSQL: a
    server-side cursor in binary format, fetched in batches of :data:`FETCH_ROWS`, so
    memory stays flat however many rows there are.
    """
    driver = conn.connection.driver_connection
    # the constants are the ledger's own (ids, states): inlined, no bind round trip
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if is_postgresql(conn):
        cursor = driver.cursor(name="syncd_stream", binary=True)  # type: ignore[union-attr]
        try:
            cursor.execute(sql)
            # whole batches: iterating the cursor itself costs a Python call per row
            while batch := cursor.fetchmany(FETCH_ROWS):
                yield from batch
        finally:
            cursor.close()
        return
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        yield from cursor
    finally:
        cursor.close()


def bulk_insert(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert ``rows`` (values in the order of ``columns``) into ``table`` as they are, ids
    kept; returns how many. PostgreSQL: one ``COPY`` (its fastest load; the table's
    foreign keys, even to itself, are checked once at its end); SQLite: executemany."""
    count = 0
    if not is_postgresql(conn):
        statement = table.insert()
        for chunk in _chunks(rows, 10_000):
            conn.execute(statement, [dict(zip(columns, row, strict=True)) for row in chunk])
            count += len(chunk)
        return count
    names = ", ".join(f'"{name}"' for name in columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    chunk: list[Sequence[Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def advance_sequences(conn: Connection, tables: Sequence[Table]) -> None:
    """After rows were loaded with their ids: make each table's next id follow the largest.

    PostgreSQL only (SQLite's rowids follow the largest id by themselves).
    """
    if not is_postgresql(conn):
        return
    for table in tables:
        for column in table.primary_key.columns:
            if not column.autoincrement or len(table.primary_key.columns) != 1:
                continue
            sequence = conn.scalar(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": column.name},
            )
            if sequence is None:
                continue
            conn.execute(
                text(
                    f'SELECT setval(:sequence, COALESCE((SELECT MAX("{column.name}") '
                    f'FROM "{table.name}"), 0) + 1, false)'
                ),
                {"sequence": sequence},
            )


# -- errors --------------------------------------------------------------------------------


def scrub(exc: BaseException, password: str | None = None) -> str:
    """A one-line reason for a database error that never shows a URL's password or the
    ledger password (SQLAlchemy's and psycopg's texts can quote the connection string)."""
    orig = getattr(exc, "orig", None) if isinstance(exc, SQLAlchemyError) else None
    line = _first_line(orig if orig is not None else exc)
    line = describe_url(line)
    line = re.sub(r"password\s*=\s*\S+", "password=***", line, flags=re.IGNORECASE)
    if password:
        line = line.replace(password, "***")
    return line


def _first_line(exc: BaseException) -> str:
    text_ = str(exc).strip()
    # psycopg puts the server's DETAIL/HINT on further lines; the first says what failed
    return text_.splitlines()[0].strip() if text_ else type(exc).__name__
