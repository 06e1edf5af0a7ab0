"""The ledger in PostgreSQL (README, Several file servers): the URLs users write, several
hosts opening one database at once, upgrades one host at a time, and a password that never
shows."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import psycopg
import pytest
from sqlalchemy import create_engine, select, text, update

from syncd.ledger.dialect import SCHEMA_LOCK_KEY, postgresql_url
from syncd.ledger.models import SCHEMA_VERSION, SchemaVersion
from syncd.ledger.schema import LedgerError, LedgerUnavailable, open_postgresql_ledger


def _connect_args(url: str, password: str | None = None) -> dict[str, object]:
    """What psycopg is handed for ``url`` (no connection made)."""
    sa_url = postgresql_url(url, password)
    _args, kwargs = create_engine(sa_url).dialect.create_connect_args(sa_url)
    return {k: v for k, v in kwargs.items() if k != "context"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://syncd@db.example:5433/syncd",
            {"user": "syncd", "host": "db.example", "port": "5433", "dbname": "syncd"},
        ),
        (
            "postgresql:///syncd?host=/run/postgresql",
            {"host": "/run/postgresql", "dbname": "syncd"},
        ),
        ("postgresql://%2Frun%2Fpostgresql/syncd", {"host": "/run/postgresql", "dbname": "syncd"}),
        (
            "postgres://syncd@[2001:db8::5]/syncd?sslmode=verify-full",
            {"user": "syncd", "host": "2001:db8::5", "sslmode": "verify-full"},
        ),
        (
            "postgresql://syncd@db1:5432,db2:5433/syncd?target_session_attrs=read-write",
            {"host": "db1,db2", "port": "5432,5433", "target_session_attrs": "read-write"},
        ),
    ],
)
def test_urls_as_users_write_them_reach_libpq_unchanged(
    url: str, expected: dict[str, str]
) -> None:
    args = _connect_args(url)
    assert args.items() >= expected.items()
    assert "password" not in args  # left to libpq: PGPASSFILE, ~/.pgpass


def test_the_ledger_password_goes_to_libpq_not_into_the_url_text() -> None:
    assert _connect_args("postgresql://syncd@db/syncd", "pw-77")["password"] == "pw-77"
    assert "pw-77" not in str(postgresql_url("postgresql://syncd@db/syncd", "pw-77"))


def test_a_socket_folder_written_as_the_host_opens_the_same_database(
    pg_url: str, tmp_path: Path
) -> None:
    parts = urlsplit(pg_url)
    socket_dir = parse_qs(parts.query)["host"][0]
    as_host = f"postgresql://postgres@{quote(socket_dir, safe='')}{parts.path}"
    first = open_postgresql_ledger(pg_url, None, tmp_path / "ledger.db")
    first.close()
    again = open_postgresql_ledger(as_host, None, tmp_path / "ledger.db")
    try:
        with again.transaction() as session:
            assert session.scalar(select(SchemaVersion.version)) == SCHEMA_VERSION
    finally:
        again.close()


def test_hosts_opening_an_empty_database_at_once_make_one_schema(
    pg_url: str, tmp_path: Path
) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def host(n: int) -> None:
        start.wait()
        try:
            open_postgresql_ledger(pg_url, None, tmp_path / f"h{n}" / "ledger.db").close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=host, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (SCHEMA_VERSION,)
        ]


def test_a_host_waits_while_another_holds_the_upgrade_lock(pg_url: str, tmp_path: Path) -> None:
    open_postgresql_ledger(pg_url, None, tmp_path / "ledger.db").close()
    opened = threading.Event()
    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))

        def second_host() -> None:
            open_postgresql_ledger(pg_url, None, tmp_path / "ledger.db").close()
            opened.set()

        thread = threading.Thread(target=second_host)
        thread.start()
        with psycopg.connect(pg_url, autocommit=True) as watcher:
            deadline = time.monotonic() + 30
            while not watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'syncd' "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
            ).fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline, "the second host never waited"
                time.sleep(0.05)
        assert not opened.is_set()
        holder.rollback()  # the first host's upgrade is done
        thread.join()
    assert opened.is_set()


def test_a_ledger_from_a_newer_syncd_is_refused(pg_url: str, tmp_path: Path) -> None:
    ledger = open_postgresql_ledger(pg_url, None, tmp_path / "ledger.db")
    with ledger.transaction() as session:
        session.execute(update(SchemaVersion).values(version=SCHEMA_VERSION + 1))
    ledger.close()
    with pytest.raises(LedgerError, match="written by a newer syncd"):
        open_postgresql_ledger(pg_url, None, tmp_path / "ledger.db")


def test_a_database_holding_something_else_is_refused(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    with pytest.raises(LedgerError, match=r"not a syncd ledger \(no schema_version table\)"):
        open_postgresql_ledger(pg_url, None, tmp_path / "ledger.db")


def test_a_database_out_of_reach_is_one_line_without_the_password(tmp_path: Path) -> None:
    # nothing listens on port 1 of loopback
    with pytest.raises(LedgerError) as info:
        open_postgresql_ledger("postgresql://syncd@127.0.0.1:1/syncd", "pw-4242", tmp_path / "l")
    message = str(info.value)
    assert message.startswith("postgresql://syncd@127.0.0.1:1/syncd: cannot open the ledger: ")
    assert "\n" not in message and "pw-4242" not in message


def test_the_ledger_is_shared_and_its_local_state_folder_is_made(
    pg_url: str, tmp_path: Path
) -> None:
    ledger = open_postgresql_ledger(pg_url, None, tmp_path / "state" / "ledger.db")
    try:
        assert ledger.shared
        assert (tmp_path / "state").is_dir()
        with ledger.engine.connect() as conn:
            assert conn.execute(text("SHOW application_name")).scalar() == "syncd"
    finally:
        ledger.close()


def _end_syncd_sessions(pg_url: str) -> int:
    """End every syncd connection to the database, as a database restart does."""
    with psycopg.connect(pg_url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'syncd' AND datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def test_after_a_database_restart_the_next_transaction_just_works(
    pg_url: str, tmp_path: Path
) -> None:
    ledger = open_postgresql_ledger(pg_url, None, tmp_path / "ledger.db")
    try:
        with ledger.transaction() as session:
            session.scalar(select(SchemaVersion.version))
        assert _end_syncd_sessions(pg_url) >= 1  # the pooled connection is dead now
        with ledger.transaction() as session:
            assert session.scalar(select(SchemaVersion.version)) == SCHEMA_VERSION
    finally:
        ledger.close()


def test_a_database_gone_mid_transaction_is_one_line_and_the_work_can_be_redone(
    pg_url: str, tmp_path: Path
) -> None:
    ledger = open_postgresql_ledger(pg_url, None, tmp_path / "ledger.db")
    try:
        with pytest.raises(LedgerUnavailable) as info, ledger.transaction() as session:
            session.scalar(select(SchemaVersion.version))
            _end_syncd_sessions(pg_url)
            session.execute(update(SchemaVersion).values(version=SCHEMA_VERSION))
        message = str(info.value)
        assert message.startswith(f"{pg_url}: the ledger is not available: ")
        assert "\n" not in message
        with ledger.transaction() as session:  # redone once the database answers
            session.execute(update(SchemaVersion).values(version=SCHEMA_VERSION))
    finally:
        ledger.close()
