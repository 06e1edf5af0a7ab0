"""The fingerprints of the items (see ``fingerprint``), kept in the store's SQLite file.

One table, ``fingerprints``, beside the store's own tables in ``gallery.db``, on a
connection of its own: (gallery, cont_sign) -> the picture's width and height and its
grey fingerprint (64x64 or 32x32 bytes). A start reads none of it: the same-image
check reads the few rows of its candidates.

A fingerprint is written before its item and purged after it, so a crash between the
two leaves at worst a fingerprint without an item, which the next start sweeps away (in
the background: it reads the whole table's keys).
Items stored before fingerprints were kept have none: the same-image check falls back
on what they have (``Galleries``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import numpy as np

from syncd.gallery.fingerprint import COARSE_SIDE, FINE_SIDE, Fingerprint

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS fingerprints (
    gallery TEXT NOT NULL,
    cont_sign TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    grey BLOB NOT NULL,
    PRIMARY KEY (gallery, cont_sign)
);
"""
#: side of a stored fingerprint by its length, bytes -> pixels
_SIDE_OF_LENGTH: Final = {FINE_SIDE * FINE_SIDE: FINE_SIDE, COARSE_SIDE * COARSE_SIDE: COARSE_SIDE}
#: rows at most per SELECT ... IN (...)
_BATCH: Final = 500
#: seconds a write waits for the store's connection to finish its own
_BUSY_TIMEOUT: Final = 30.0


class FingerprintStore:
    """The ``fingerprints`` table of the store file at ``path``.

    Thread-safe: one connection, serialised by a lock (reads and writes are short).
    """

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=_BUSY_TIMEOUT
        )
        # as the store's own connection: in WAL mode, a commit need not wait for the disk
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection (later calls raise sqlite3.ProgrammingError)."""
        with self._lock:
            self._db.close()

    def insert(self, gallery: str, cont_sign: str, fingerprint: Fingerprint) -> None:
        """Keep the fingerprint of an item (replacing a stale row of the same cont_sign:
        a cont_sign hashes the pixels, so the fingerprint is the same anyway)."""
        grey = np.ascontiguousarray(fingerprint.grey, dtype=np.uint8).tobytes()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO fingerprints (gallery, cont_sign, width, height, grey)"
                " VALUES (?, ?, ?, ?, ?)",
                (gallery, cont_sign, fingerprint.width, fingerprint.height, grey),
            )

    def load(self, gallery: str, cont_signs: Iterable[str]) -> dict[str, Fingerprint]:
        """cont_sign -> fingerprint of those of ``cont_signs`` that have one (a row of
        an unknown size is left out, as if missing)."""
        wanted = list(dict.fromkeys(cont_signs))
        found: dict[str, Fingerprint] = {}
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            with self._lock:
                rows = self._db.execute(
                    "SELECT cont_sign, width, height, grey FROM fingerprints"
                    f" WHERE gallery = ? AND cont_sign IN ({marks})",
                    (gallery, *batch),
                ).fetchall()
            for sign, width, height, grey in rows:
                side = _SIDE_OF_LENGTH.get(len(grey))
                if side is None:
                    continue
                pixels = np.frombuffer(grey, dtype=np.uint8).reshape(side, side)
                found[sign] = Fingerprint(int(width), int(height), pixels.copy())
        return found

    def purge(self, gallery: str, cont_signs: Iterable[str]) -> None:
        """Forget the fingerprints of items removed for good."""
        pairs = [(gallery, sign) for sign in cont_signs]
        if not pairs:
            return
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "DELETE FROM fingerprints WHERE gallery = ? AND cont_sign = ?", pairs
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def last_row(self) -> int:
        """The rowid of the newest fingerprint (0: none): ``sweep`` looks at no later one."""
        with self._lock:
            row = self._db.execute("SELECT coalesce(max(rowid), 0) FROM fingerprints").fetchone()
        return int(row[0])

    def sweep(self, last_row: int) -> int:
        """Remove the fingerprints up to rowid ``last_row`` whose item the store no longer
        holds (a crash between the two writes); how many. Later rows are left alone: an add
        writes its fingerprint a moment before its item."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM fingerprints WHERE rowid <= ? AND NOT EXISTS (SELECT 1 FROM items"
                " WHERE items.gallery = fingerprints.gallery"
                " AND items.cont_sign = fingerprints.cont_sign)",
                (last_row,),
            )
        return max(0, cursor.rowcount)
