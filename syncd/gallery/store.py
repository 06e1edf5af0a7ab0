"""SQLite persistence of the local gallery: items of every gallery, and issued tokens.

One file, ``gallery.db`` under the data folder, in WAL mode. The in-memory index is
the working copy; every write goes here before the request is answered, so a restart
(or a crash) keeps every item the clients were told about.

Schema 2 adds ``local_features``: the keypoints of same_hq items (what finds partial
copies) and their index words. A data folder of schema 1 is upgraded in place at open;
its items, stored before keypoints were kept, are still found by their global features.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import numpy as np

from syncd.gallery.index import COLOUR_DIM, VECTOR_DIM, IndexEntry, StoredItems
from syncd.gallery.keypoints import CHECK_SIDE, ItemWords, LocalFeatures

DB_NAME: Final = "gallery.db"
SCHEMA_VERSION: Final = 2

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    gallery TEXT NOT NULL,
    cont_sign TEXT NOT NULL,
    brief TEXT NOT NULL,
    tag1 INTEGER NOT NULL,
    tag2 INTEGER NOT NULL,
    phash INTEGER NOT NULL,
    colours BLOB NOT NULL,
    vector BLOB NOT NULL,
    added_at REAL NOT NULL,
    deleted_at REAL,
    PRIMARY KEY (gallery, cont_sign)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS local_features (
    gallery TEXT NOT NULL,
    cont_sign TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    points BLOB NOT NULL,
    geometry BLOB NOT NULL,
    descriptors BLOB NOT NULL,
    thumb BLOB NOT NULL,
    words BLOB NOT NULL,
    word_geometry BLOB NOT NULL,
    PRIMARY KEY (gallery, cont_sign)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    issued_at REAL NOT NULL
);
"""

_SIGN_BIT: Final = 1 << 63


def _to_sql_int(value: int) -> int:
    """A uint64 as the signed 64-bit integer SQLite stores."""
    return value - (1 << 64) if value >= _SIGN_BIT else value


class GalleryStore:
    """The durable copy of every gallery's items and of issued access tokens.

    Thread-safe: one connection, serialised by a lock (writes are short).
    """

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_NAME
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # schema 1 -> 2 is the new local_features table, made here if missing
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction: committed at the end, rolled back on an exception."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database (later calls raise sqlite3.ProgrammingError)."""
        with self._lock:
            self._db.close()

    def load(self, gallery: str) -> StoredItems:
        """Every stored item of ``gallery``, deleted-but-not-purged ones included, as
        columns (read a batch at a time: 100k rows at once would be hundreds of MB)."""
        signs: list[str] = []
        briefs: list[str] = []
        tags: list[tuple[int, int]] = []
        phashes: list[int] = []
        colours: list[bytes] = []
        vectors: list[bytes] = []
        deleted: list[float] = []
        with self._lock:
            cursor = self._db.execute(
                "SELECT cont_sign, brief, tag1, tag2, phash, colours, vector, deleted_at"
                " FROM items WHERE gallery = ?",
                (gallery,),
            )
        while True:
            with self._lock:
                rows = cursor.fetchmany(4096)
            if not rows:
                break
            for sign, brief, tag1, tag2, phash, colour, vector, deleted_at in rows:
                signs.append(sign)
                briefs.append(brief)
                tags.append((tag1, tag2))
                phashes.append(phash)
                # a blob of another length would shift every later row: pad or cut it
                colours.append(colour[:COLOUR_DIM].ljust(COLOUR_DIM, b"\0"))
                vectors.append(vector[: 4 * VECTOR_DIM].ljust(4 * VECTOR_DIM, b"\0"))
                deleted.append(np.nan if deleted_at is None else deleted_at)
        return StoredItems(
            signs=signs,
            briefs=briefs,
            tags=np.array(tags, dtype=np.int32).reshape(-1, 2),
            # SQLite holds the uint64 hash as the signed integer of the same bits
            phash=np.array(phashes, dtype=np.int64).view(np.uint64),
            colours=np.frombuffer(b"".join(colours), dtype=np.uint8).reshape(-1, COLOUR_DIM),
            vectors=np.frombuffer(b"".join(vectors), dtype="<f4")
            .astype(np.float32)
            .reshape(-1, VECTOR_DIM),
            deleted_at=np.array(deleted, dtype=np.float64),
        )

    def count_words(self, gallery: str) -> int:
        """How many index words the stored items of ``gallery`` post in all."""
        with self._lock:
            row = self._db.execute(
                "SELECT coalesce(sum(length(words)), 0) FROM local_features WHERE gallery = ?",
                (gallery,),
            ).fetchone()
        return int(row[0]) // 4

    def load_words(self, gallery: str) -> Iterator[tuple[str, ItemWords]]:
        """(cont_sign, index words) of every stored item of ``gallery`` with keypoints,
        read a batch at a time (100k items' words would be hundreds of MB at once)."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT cont_sign, words, word_geometry FROM local_features WHERE gallery = ?",
                (gallery,),
            )
        while True:
            with self._lock:
                rows = cursor.fetchmany(2048)
            if not rows:
                return
            for sign, words, geometry in rows:
                posted = np.frombuffer(words, dtype="<u4").astype(np.uint32)
                yield sign, ItemWords(posted, np.frombuffer(geometry, dtype=np.uint8).copy())

    def keypoint_signs(self, gallery: str) -> set[str]:
        """The cont_signs of the stored items of ``gallery`` that have keypoints."""
        with self._lock:
            rows = self._db.execute(
                "SELECT cont_sign FROM local_features WHERE gallery = ?", (gallery,)
            ).fetchall()
        return {sign for (sign,) in rows}

    def load_words_of(self, gallery: str, cont_signs: Iterable[str]) -> list[tuple[str, ItemWords]]:
        """(cont_sign, index words) of those of ``cont_signs`` that have keypoints."""
        wanted = list(cont_signs)
        found = []
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            with self._lock:
                rows = self._db.execute(
                    "SELECT cont_sign, words, word_geometry FROM local_features"
                    f" WHERE gallery = ? AND cont_sign IN ({marks})",
                    (gallery, *batch),
                ).fetchall()
            for sign, words, geometry in rows:
                posted = np.frombuffer(words, dtype="<u4").astype(np.uint32)
                found.append((sign, ItemWords(posted, np.frombuffer(geometry, dtype=np.uint8).copy())))
        return found

    def load_local_features(self, gallery: str, cont_signs: list[str]) -> dict[str, LocalFeatures]:
        """cont_sign -> keypoints of those of ``cont_signs`` that have them."""
        if not cont_signs:
            return {}
        marks = ",".join("?" * len(cont_signs))
        with self._lock:
            rows = self._db.execute(
                "SELECT cont_sign, width, height, points, geometry, descriptors, thumb"
                f" FROM local_features WHERE gallery = ? AND cont_sign IN ({marks})",
                (gallery, *cont_signs),
            ).fetchall()
        found = {}
        for sign, width, height, points, geometry, descriptors, thumb in rows:
            found[sign] = LocalFeatures(
                width=width,
                height=height,
                points=np.frombuffer(points, dtype="<f4").astype(np.float32).reshape(-1, 2),
                geometry=np.frombuffer(geometry, dtype=np.uint8).copy(),
                descriptors=np.frombuffer(descriptors, dtype=np.uint8).reshape(-1, 32).copy(),
                thumb=np.frombuffer(thumb, dtype=np.uint8).reshape(CHECK_SIDE, CHECK_SIDE).copy(),
            )
        return found

    def insert(
        self,
        gallery: str,
        entry: IndexEntry,
        added_at: float,
        local: LocalFeatures | None = None,
    ) -> None:
        """Store a new item (replacing a purged row of the same cont_sign, if any), with
        its keypoints when it has them."""
        features = entry.features
        with self._lock, self._transaction():
            if local is not None:
                words = ItemWords.of(local)
                self._db.execute(
                    "INSERT OR REPLACE INTO local_features (gallery, cont_sign, width, height,"
                    " points, geometry, descriptors, thumb, words, word_geometry)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        gallery,
                        entry.cont_sign,
                        local.width,
                        local.height,
                        local.points.astype("<f4").tobytes(),
                        local.geometry.astype(np.uint8).tobytes(),
                        local.descriptors.astype(np.uint8).tobytes(),
                        local.thumb.astype(np.uint8).tobytes(),
                        words.words.astype("<u4").tobytes(),
                        words.geometry.astype(np.uint8).tobytes(),
                    ),
                )
            self._db.execute(
                "INSERT OR REPLACE INTO items (gallery, cont_sign, brief, tag1, tag2, phash,"
                " colours, vector, added_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    gallery,
                    entry.cont_sign,
                    entry.brief,
                    entry.tag1,
                    entry.tag2,
                    _to_sql_int(features.phash),
                    features.colours.astype(np.uint8).tobytes(),
                    features.vector.astype("<f4").tobytes(),
                    added_at,
                ),
            )

    def update_meta(self, gallery: str, cont_sign: str, brief: str, tag1: int, tag2: int) -> None:
        """Replace the brief and tags of one item."""
        with self._lock:
            self._db.execute(
                "UPDATE items SET brief = ?, tag1 = ?, tag2 = ? WHERE gallery = ? AND cont_sign = ?",
                (brief, tag1, tag2, gallery, cont_sign),
            )

    def mark_deleted(self, gallery: str, cont_signs: Iterable[str], when: float) -> None:
        """Record the deletion time of items still searchable for a while."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE items SET deleted_at = ? WHERE gallery = ? AND cont_sign = ?",
                [(when, gallery, sign) for sign in cont_signs],
            )
            self._db.execute("COMMIT")

    def purge(self, gallery: str, cont_signs: Iterable[str]) -> None:
        """Remove items for good."""
        with self._lock:
            self._db.execute("BEGIN")
            pairs = [(gallery, sign) for sign in cont_signs]
            self._db.executemany("DELETE FROM items WHERE gallery = ? AND cont_sign = ?", pairs)
            self._db.executemany(
                "DELETE FROM local_features WHERE gallery = ? AND cont_sign = ?", pairs
            )
            self._db.execute("COMMIT")

    def save_token(self, token: str, client_id: str, issued_at: float) -> None:
        """Remember an issued access token."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO tokens (token, client_id, issued_at) VALUES (?, ?, ?)",
                (token, client_id, issued_at),
            )

    def load_tokens(self, issued_after: float) -> dict[str, float]:
        """token -> issued_at of tokens issued after ``issued_after``; older ones are dropped."""
        with self._lock:
            self._db.execute("DELETE FROM tokens WHERE issued_at <= ?", (issued_after,))
            rows = self._db.execute("SELECT token, issued_at FROM tokens").fetchall()
        return {token: issued_at for token, issued_at in rows}
