"""The ledger file: created at the current schema, older ones upgraded in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from ledgers import LedgerChoice
from sqlalchemy import inspect, select, text

from ledger.world import World
from syncd.ledger.models import SCHEMA_VERSION, File, Item, Tombstone
from syncd.ledger.queue import claim_due_intents
from syncd.ledger.schema import LedgerError, open_ledger

V1_DDL = Path(__file__).with_name("ledger_v1.sql")


def _v1_ledger(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_DDL.read_text(encoding="utf-8"))
    return path


def _shape(path: Path) -> dict[str, object]:
    """Tables -> (columns with types and nullability, index names) of a ledger."""
    ledger = open_ledger(path)
    try:
        insp = inspect(ledger.engine)
        return {
            table: (
                sorted((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)),
                sorted(str(i["name"]) for i in insp.get_indexes(table)),
            )
            for table in insp.get_table_names()
        }
    finally:
        ledger.close()


def test_a_version_1_ledger_is_upgraded_in_place_keeping_its_data(tmp_path: Path) -> None:
    ledger = open_ledger(_v1_ledger(tmp_path / "ledger.db"))
    try:
        with ledger.transaction() as session:
            assert session.scalar(text("SELECT version FROM schema_version")) == SCHEMA_VERSION
            files = {f.relpath: f for f in session.scalars(select(File))}
            odd = b"caf_\xe9.jpg".decode("utf-8", "surrogateescape")
            assert set(files) == {"a.jpg", odd}
            assert files["a.jpg"].verdict == "ok" and files["a.jpg"].verdict_reason is None
            items = {i.id: i for i in session.scalars(select(Item))}
            assert items[1].cont_sign == "sign-a" and items[1].state == "synced"
            assert (items[2].op, items[2].attempts, items[2].error_code) == ("add", 3, 2)
            # the new table works
            session.add(Tombstone(gallery="similar", cont_sign="x", deleted_at=1.0))
    finally:
        ledger.close()


def test_an_upgraded_ledger_has_the_shape_of_a_new_one(tmp_path: Path) -> None:
    upgraded = _shape(_v1_ledger(tmp_path / "old.db"))
    fresh = _shape(tmp_path / "new.db")
    assert upgraded == fresh


def test_opening_an_upgraded_ledger_again_changes_nothing(tmp_path: Path) -> None:
    path = _v1_ledger(tmp_path / "ledger.db")
    first = _shape(path)
    assert _shape(path) == first


def test_a_ledger_from_a_newer_syncd_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    open_ledger(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(LedgerError, match="newer syncd"):
        open_ledger(path)


def test_a_database_that_is_not_a_ledger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(LedgerError, match="not a syncd ledger"):
        open_ledger(path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(LedgerError, match="cannot open"):
        open_ledger(junk)


def test_the_ledger_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "sub" / "ledger.db")
    try:
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        ledger.close()


def test_a_missing_ledger_is_not_created_when_not_asked(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger yet"):
        open_ledger(tmp_path / "none.db", create=False)
    assert not (tmp_path / "none.db").exists()


def _item_indexes(ledger_engine: object) -> set[str]:
    return {str(i["name"]) for i in inspect(ledger_engine).get_indexes("items")}


def test_a_version_5_ledger_gets_the_queue_and_lease_indexes(
    tmp_path: Path, ledger_choice: LedgerChoice
) -> None:
    """A ledger written before the partial indexes of the queue (schema 5) gets them when
    opened, keeps its intents, and claims from them."""
    world = World(tmp_path, ledger=ledger_choice)
    try:
        world.write("a.jpg", 1)
        world.write("b.jpg", 2)
        world.scan()
        new = _item_indexes(world.ledger.engine)
        assert {"ix_items_queue", "ix_items_claimed"} <= new
        with world.ledger.transaction() as session:
            session.execute(text("DROP INDEX ix_items_queue"))
            session.execute(text("DROP INDEX ix_items_claimed"))
            session.execute(text("UPDATE schema_version SET version = 5"))
        assert not {"ix_items_queue", "ix_items_claimed"} & _item_indexes(world.ledger.engine)
    finally:
        world.close()
    ledger = open_ledger(world.config.ledger)
    try:
        assert _item_indexes(ledger.engine) == new
        with ledger.transaction() as session:
            assert session.scalar(text("SELECT version FROM schema_version")) == SCHEMA_VERSION
            claimed = claim_due_intents(session, "w", world.clock)
        assert sorted(i.relpath or "" for i in claimed) == ["a.jpg", "b.jpg"]
    finally:
        ledger.close()
