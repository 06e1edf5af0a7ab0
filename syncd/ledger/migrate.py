"""``syncd ledger migrate --to URL``: this host's SQLite ledger into PostgreSQL,
with no API call (README, Several file servers).

Every table is copied as it is, ids kept, in one transaction on the target: either the
whole ledger arrives, its row counts checked table by table, or nothing does. Item ids,
cont_signs and have_* columns come along, so the first reconcile on the new ledger finds
everything synced and makes no API call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Connection, LargeBinary, Table, func, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from syncd.errors import SyncdError
from syncd.ledger.dialect import (
    LedgerUrlError,
    advance_sequences,
    bulk_insert,
    describe_url,
    postgresql_engine,
    scrub,
    stream_rows,
    upgrade_lock,
)
from syncd.ledger.models import Base
from syncd.ledger.schema import LedgerError, open_ledger
from syncd.paths.relpath import encode_relpath


class MigrateError(SyncdError):
    """The copy was refused or failed; nothing was written to the target."""


@dataclass(frozen=True)
class TableCopy:
    """One table copied: its name and its rows (the same count on both sides)."""

    name: str
    rows: int


@dataclass(frozen=True)
class MigrateResult:
    """What ``migrate_to_postgresql`` copied, and where (the URL without a password)."""

    target: str
    tables: tuple[TableCopy, ...]

    @property
    def rows(self) -> int:
        """All rows copied."""
        return sum(table.rows for table in self.tables)


def migrate_to_postgresql(source: Path, url: str, password: str | None) -> MigrateResult:
    """Copy the SQLite ledger at ``source`` into the empty PostgreSQL ledger at ``url``.

    The source is brought to the current schema first. ``password``: None leaves it to
    libpq. Raises :class:`MigrateError` (a target that holds any table with rows, a target
    that cannot be reached, counts that differ) with one line that shows no password.
    """
    target_name = describe_url(url)
    try:
        ledger = open_ledger(source, create=False)
    except LedgerError as exc:
        raise MigrateError(str(exc)) from None
    try:
        engine = postgresql_engine(url, password)
    except LedgerUrlError as exc:
        ledger.close()
        raise MigrateError(str(exc)) from None
    tables = list(Base.metadata.sorted_tables)  # parents before children
    try:
        # one read transaction on the source: a consistent snapshot of every table
        with ledger.engine.connect() as src, src.begin(), engine.begin() as dst:
            upgrade_lock(dst)  # no host creates the tables meanwhile
            _require_empty(dst, target_name)
            Base.metadata.create_all(dst)
            copies = [_copy_table(src, dst, table) for table in tables]
            advance_sequences(dst, tables)
            for copy in copies:
                got = int(dst.scalar(select(func.count()).select_from(_table(copy.name))) or 0)
                if got != copy.rows:
                    raise MigrateError(
                        f"{target_name}: table {copy.name} has {got} rows after the copy, "
                        f"the source has {copy.rows}; nothing was kept"
                    )
    except SQLAlchemyError as exc:
        raise MigrateError(f"{target_name}: the copy failed: {scrub(exc, password)}") from None
    finally:
        engine.dispose()
        ledger.close()
    return MigrateResult(target_name, tuple(copies))


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _require_empty(dst: Connection, target_name: str) -> None:
    """Refuse a target that holds a table with rows (an empty syncd schema is fine)."""
    present = set(inspect(dst).get_table_names())
    for name in sorted(present - set(Base.metadata.tables)):
        raise MigrateError(
            f"{target_name}: the database is not empty (table {name}); "
            "migrate into a new, empty database"
        )
    for table in Base.metadata.sorted_tables:
        if table.name not in present or table.name == "schema_version":
            continue
        if dst.scalar(select(func.count()).select_from(table)):
            raise MigrateError(
                f"{target_name}: the database holds a ledger already (table {table.name} "
                "has rows); migrate into a new, empty database"
            )
    if "schema_version" in present:
        dst.execute(_table("schema_version").delete())  # the copy brings the source's


def _copy_table(src: Connection, dst: Connection, table: Table) -> TableCopy:
    names = [column.name for column in table.columns]
    fixes = [_fixer(column.type) for column in table.columns]
    rows = stream_rows(src, select(*table.columns).order_by(*table.primary_key.columns))
    count = bulk_insert(dst, table, names, (_fixed(row, fixes) for row in rows))
    return TableCopy(table.name, count)


def _fixer(kind: Any) -> Any:
    """How a raw SQLite value becomes what the PostgreSQL column takes (None: as it is)."""
    if isinstance(kind, Boolean):
        return lambda v: None if v is None else bool(v)
    if isinstance(kind, LargeBinary) or isinstance(getattr(kind, "impl", None), LargeBinary):
        # paths are BLOBs; a value SQLite kept as TEXT is encoded as the ledger stores paths
        return lambda v: encode_relpath(v) if isinstance(v, str) else v
    return None


def _fixed(row: Sequence[Any], fixes: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(v if fix is None else fix(v) for v, fix in zip(row, fixes, strict=True))
