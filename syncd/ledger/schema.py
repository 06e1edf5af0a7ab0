"""Opening the ledger: create it at the current schema, or upgrade an older one in place.

Each release that changes the tables appends one migration to :data:`MIGRATIONS`; a
migration spells out its own DDL (never the live models), as the release that wrote it saw
the schema, so old ledgers upgrade step by step whatever the models look like today.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from syncd.config import LedgerConfig
from syncd.errors import SyncdError
from syncd.ledger.counters import rebuild_counts
from syncd.ledger.dialect import (
    BUSY_TIMEOUT_MS,
    LedgerUrlError,
    describe_url,
    is_postgresql,
    ledger_engine,
    postgresql_engine,
    scrub,
    sqlite_busy,
    upgrade_lock,
    writer_gate,
)
from syncd.ledger.models import SCHEMA_VERSION, Base, SchemaVersion

_log = logging.getLogger(__name__)


class LedgerError(SyncdError):
    """The ledger cannot be opened (newer schema, not a ledger, unreadable)."""


class LedgerUnavailable(SyncdError):
    """The PostgreSQL ledger went away mid-work (restart, failover, network): the work is
    rolled back and can be tried again once it is back. The text never holds a password."""


def _v1_to_v2(conn: Connection) -> None:
    """v2: files keep the reason of their verdict, indexed by it; deleted items leave
    tombstones."""
    conn.execute(text("ALTER TABLE files ADD COLUMN verdict_reason TEXT"))
    conn.execute(text("CREATE INDEX ix_files_verdict ON files (verdict)"))
    tombstones = Table(
        "tombstones",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("gallery", String(16), nullable=False),
        Column("cont_sign", String(128), nullable=False),
        Column("content_hash", String(64)),
        Column("deleted_at", Float, nullable=False),
        Index("ix_tombstones_gallery_hash", "gallery", "content_hash"),
        Index("ix_tombstones_gallery_cont_sign", "gallery", "cont_sign"),
    )
    tombstones.create(conn)


def _v2_to_v3(conn: Connection) -> None:
    """v3: files keep the device they were read on (a moved file is known by its identity)."""
    conn.execute(text("ALTER TABLE files ADD COLUMN dev BIGINT"))


def _v3_to_v4(conn: Connection) -> None:
    """v4: several hosts share a ledger: libraries name their host, hosts heartbeat, and
    calls are counted per host and minute; an add waiting out the gallery's deletion
    latency says so in its own column; intents wait in a live lane or the bulk one."""
    conn.execute(text("ALTER TABLE libraries ADD COLUMN host VARCHAR(200)"))
    conn.execute(text("ALTER TABLE items ADD COLUMN latency_until FLOAT"))
    conn.execute(text("ALTER TABLE items ADD COLUMN lane SMALLINT NOT NULL DEFAULT 1"))
    conn.execute(text("ALTER TABLE items ADD COLUMN order_key FLOAT NOT NULL DEFAULT 0"))
    conn.execute(text("CREATE INDEX ix_items_lane ON items (state, lane, order_key)"))
    metadata = MetaData()
    Table(
        "hosts",
        metadata,
        Column("name", String(200), primary_key=True),
        Column("pid", Integer, nullable=False),
        Column("started_at", Float, nullable=False),
        Column("last_seen", Float, nullable=False),
        Column("version", String(32), nullable=False),
    )
    Table(
        "call_log",
        metadata,
        Column("host", String(200), primary_key=True),
        Column("minute", Integer, primary_key=True),
        Column("calls", Integer, nullable=False),
    )
    Table(
        "budget_days",
        metadata,
        Column("day", String(10), primary_key=True),
        Column("used", Integer, nullable=False),
    )
    metadata.create_all(conn)


def _v4_to_v5(conn: Connection) -> None:
    """v5: counts per library and per gallery, kept in step by the writes
    (syncd.ledger.counters), started here from a full count of the rows."""
    Table(
        "ledger_counts",
        MetaData(),
        Column("shard", SmallInteger, primary_key=True),
        Column("library_id", BigInteger, primary_key=True),
        Column("gallery", String(16), primary_key=True),
        Column("kind", String(32), primary_key=True),
        Column("n", BigInteger, nullable=False),
    ).create(conn)
    rebuild_counts(conn)


def _v5_to_v6(conn: Connection) -> None:
    """v6: two partial indexes: the queue alone in claim order (pending intents by lane,
    order and id), and the leases held (by holder, then when last renewed). "IF NOT EXISTS":
    a ledger made by this release and set back to v5 by hand upgrades too."""
    conn.execute(
        text(
            "CREATE INDEX IF NOT EXISTS ix_items_queue ON items (lane, order_key, id) "
            "WHERE state = 'pending' AND op IS NOT NULL"
        )
    )
    conn.execute(
        text(
            "CREATE INDEX IF NOT EXISTS ix_items_claimed ON items (claim_owner, claimed_at) "
            "WHERE claim_owner IS NOT NULL"
        )
    )


#: MIGRATIONS[n] upgrades a ledger at schema version n + 1 to n + 2
MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_to_v2,
    _v2_to_v3,
    _v3_to_v4,
    _v4_to_v5,
    _v5_to_v6,
]
assert len(MIGRATIONS) + 1 == SCHEMA_VERSION


#: the session of one ledger transaction, as the other stages name it (they import no SQLAlchemy)
LedgerSession = Session


class Ledger:
    """An open ledger: an engine and sessions on it. Close it when done.

    ``path``: for SQLite the ledger file; for PostgreSQL the anchor of this host's local
    state (``<path>.lock``, ``<path>.inflight/``), which lives in ``ledger.state_dir``.
    ``where``: how messages name the ledger (the file, or the URL without a password).
    """

    def __init__(self, engine: Engine, path: Path, where: str | None = None) -> None:
        self.engine = engine
        self.path = path
        self.where = where if where is not None else str(path)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._gate = writer_gate(engine)

    @property
    def shared(self) -> bool:
        """Whether the ledger is a PostgreSQL one, which several hosts may share."""
        return is_postgresql(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error.

        Raises :class:`LedgerUnavailable` when a PostgreSQL ledger cannot be reached.
        """
        try:
            with self._gate, self._sessions() as session, session.begin():
                yield session
        except (OperationalError, InterfaceError) as exc:
            if not self.shared:
                raise
            # one line for the log, not a traceback per try while the database is away
            reason = scrub(exc)
            raise LedgerUnavailable(
                f"{self.where}: the ledger is not available: {reason}"
            ) from None

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for the bulk reads that bypass sessions (a scan's index)."""
        with self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def open_ledger(where: Path | LedgerConfig, create: bool = True) -> Ledger:
    """Open the ledger, creating it (and its folder) or upgrading it as needed.

    ``where``: a SQLite ledger's file, or the ``[ledger]`` config (SQLite at ``path``, or
    PostgreSQL at ``url`` with its password). With ``create=False`` a SQLite file that is
    missing raises :class:`LedgerError` instead (a PostgreSQL database always exists).
    """
    if isinstance(where, LedgerConfig):
        if where.url:
            return open_postgresql_ledger(where.url, where.password or None, where.path)
        where = where.path
    return _open_sqlite_ledger(where, create)


#: seconds between two tries of a SQLite ledger another process is setting up
OPEN_RETRY_PAUSE = 0.05


def _open_sqlite_ledger(path: Path, create: bool) -> Ledger:
    if not path.exists():
        if not create:
            raise LedgerError(f"{path}: no ledger yet (run `syncd reconcile` first)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"{path}: cannot create the ledger's folder: {exc.strerror}"
            ) from None
    # two processes creating one new ledger at once: the second finds it locked while the
    # first sets it up; it waits as a writer would, then sees the tables made
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        engine = ledger_engine(path)
        try:
            with engine.begin() as conn:
                _bring_up_to_date(conn, str(path))
        except DatabaseError as exc:
            engine.dispose()
            if sqlite_busy(exc) and time.monotonic() < deadline:
                time.sleep(OPEN_RETRY_PAUSE)
                continue
            raise LedgerError(f"{path}: cannot open the ledger: {exc.orig}") from None
        except LedgerError:
            engine.dispose()
            raise
        return Ledger(engine, path)


def open_postgresql_ledger(url: str, password: str | None, local: Path) -> Ledger:
    """Open the PostgreSQL ledger at ``url`` (libpq form), creating its tables in an empty
    database or upgrading them, one host at a time (an advisory lock; the others wait).

    ``password``: None leaves it to libpq (``PGPASSFILE``, ``~/.pgpass``). ``local``: the
    anchor of this host's local state (see :class:`Ledger`). Errors never show a password.
    """
    where = describe_url(url)
    try:
        local.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(
            f"{local.parent}: cannot create this host's state folder: {exc.strerror}"
        ) from None
    try:
        engine = postgresql_engine(url, password)
    except LedgerUrlError as exc:
        raise LedgerError(str(exc)) from None
    try:
        with engine.begin() as conn:
            upgrade_lock(conn)
            _bring_up_to_date(conn, where)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise LedgerError(f"{where}: cannot open the ledger: {scrub(exc, password)}") from None
    except LedgerError:
        engine.dispose()
        raise
    return Ledger(engine, local, where)


def _bring_up_to_date(conn: Connection, path: str) -> None:
    # PostgreSQL: only this database's own tables (other schemas may hold anything)
    tables = set(inspect(conn).get_table_names())
    if not tables:
        Base.metadata.create_all(conn)
        conn.execute(insert(SchemaVersion).values(version=SCHEMA_VERSION))
        return
    if "schema_version" not in tables:
        raise LedgerError(f"{path}: not a syncd ledger (no schema_version table)")
    version = conn.execute(select(SchemaVersion.version)).scalar_one_or_none()
    if version is None or version < 1:
        raise LedgerError(f"{path}: the ledger's schema_version table is empty")
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"{path}: the ledger is at schema {version}, written by a newer syncd "
            f"(this one knows up to {SCHEMA_VERSION})"
        )
    for step in range(version, SCHEMA_VERSION):
        _log.info("upgrading ledger %s from schema %d to %d", path, step, step + 1)
        MIGRATIONS[step - 1](conn)
    if version != SCHEMA_VERSION:
        conn.execute(update(SchemaVersion).values(version=SCHEMA_VERSION))
