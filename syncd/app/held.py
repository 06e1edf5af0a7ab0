"""Held deletes: files that vanished together past the mass-delete threshold wait, held,
until a person lets them go (docs/rules.md). The console lists them and lets a library's go;
``syncd reconcile --allow-mass-delete`` lets them go at its scan."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from syncd.config import Config
from syncd.ledger.browse import HeldLibrary, held_deletes, release_held_deletes
from syncd.ledger.schema import open_ledger

if TYPE_CHECKING:
    from syncd.ledger.browse import LedgerReader

__all__ = ["HeldLibrary", "held_libraries", "release_held"]


def held_libraries(reader: LedgerReader, limit: int = 200) -> list[HeldLibrary]:
    """Each library with held deletes: how many, and the first ``limit`` paths; [] when the
    ledger does not exist yet."""
    if not reader.exists():
        return []
    with reader.reading() as session:
        return held_deletes(session, limit)


def release_held(config: Config, library: str, now: float | None = None) -> int:
    """Let ``library``'s held deletes go, in a transaction of its own on the config's ledger:
    the next sync pass deletes their items (after ``watch.delete_grace``). Returns how many
    were let go; 0 for a library the ledger does not know.

    Raises LedgerError (``syncd.app.errors``) when the ledger cannot be opened (it is not
    created)."""
    ledger = open_ledger(config.ledger, create=False)
    try:
        with ledger.transaction() as session:
            return release_held_deletes(
                session,
                library,
                time.time() if now is None else now,
                config.watch.delete_grace,
            )
    finally:
        ledger.close()
