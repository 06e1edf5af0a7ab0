"""The ledger itself: ``syncd ledger migrate`` (this host's SQLite ledger copied into an
empty PostgreSQL one) and ``syncd ledger release-host`` (a host gone for good forgotten, its
libraries free for the next host naming them; docs/rules.md, Several hosts)."""

from __future__ import annotations

import time
from pathlib import Path

from syncd.config import Config
from syncd.gates.host_lock import LedgerBusy, SyncLock
from syncd.ledger.hosts import HOST_GONE_AFTER
from syncd.ledger.hosts import release_host as forget_host
from syncd.ledger.migrate import MigrateError, MigrateResult, migrate_to_postgresql
from syncd.ledger.schema import open_ledger
from syncd.sync.inflight import AddSpool

__all__ = [
    "LedgerBusy",
    "MigrateError",
    "MigrateResult",
    "check_migrate_source",
    "migrate_ledger",
    "release_host",
]


def check_migrate_source(config: Config) -> Path:
    """This host's SQLite ledger, the one ``migrate_ledger`` would copy. Raises MigrateError
    when the ledger is in PostgreSQL already, or when there is no ledger yet."""
    if config.ledger.shared:
        raise MigrateError("ledger.url: this host's ledger is in PostgreSQL already")
    source = config.ledger.path
    if not source.exists():
        raise MigrateError(f"{source}: no ledger to migrate")
    return source


def migrate_ledger(config: Config, url: str, password: str | None) -> MigrateResult:
    """Copy this host's SQLite ledger into the empty PostgreSQL ledger at ``url``, in one
    transaction, holding this host's sync lock so no syncd process writes it meanwhile.
    ``password``: None leaves it to libpq (PGPASSFILE, ~/.pgpass). The SQLite ledger stays
    as it was.

    Raises MigrateError (as :func:`check_migrate_source`; adds whose answers were lost are
    not settled yet; the copy was refused or failed: nothing written), LedgerBusy (another
    process syncs)."""
    source = check_migrate_source(config)
    lock = SyncLock(source, config.host)
    lock.acquire()
    try:
        unsettled = AddSpool.for_host(source, config.host).count()
        if unsettled:
            adds = "1 add" if unsettled == 1 else f"{unsettled} adds"
            raise MigrateError(
                f"{source}: {adds} whose answers were lost are not settled yet; "
                "run `syncd reconcile` first"
            )
        return migrate_to_postgresql(source, url, password)
    finally:
        lock.release()


def release_host(config: Config, name: str, force: bool = False) -> list[str]:
    """Forget host ``name`` (gone for good); returns its libraries, which go to the next
    host naming them. ``force``: even though it was seen in the last minute (the operator
    says it is stopped; its leases lapse on their own).

    Raises LedgerError (``syncd.app.errors``; the ledger is not created), ConfigError (no
    such host, or it was seen lately without ``force``)."""
    ledger = open_ledger(config.ledger, create=False)
    try:
        with ledger.transaction() as session:
            now = time.time()
            return forget_host(session, name, now + (HOST_GONE_AFTER if force else 0.0))
    finally:
        ledger.close()
