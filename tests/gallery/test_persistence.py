"""The gallery keeps every item, brief, tag and token across restarts (SQLite)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from devkit.textured import crop_copy, textured_image
from syncd.api.baidu.galleries import GALLERY_NAMES
from syncd.gallery.server import GalleryServer

from .helpers import API_KEY, SECRET_KEY, ApiClient, b64, live_items, tag_params

MakeImage = Callable[..., bytes]


def _server(path: Path) -> GalleryServer:
    return GalleryServer(path, api_key=API_KEY, secret_key=SECRET_KEY)


def test_restart_keeps_every_item_with_its_brief_and_tags(
    tmp_path: Path, make_image: MakeImage
) -> None:
    data = tmp_path / "gallery"
    before: dict[str, dict[str, dict[str, object]]] = {}
    with _server(data) as server:
        client = ApiClient(server)
        for n, gallery in enumerate(GALLERY_NAMES):
            signs = []
            for seed in range(n * 10, n * 10 + 6):
                params = {"brief": f"{gallery} {seed}", **tag_params(gallery, seed + 1, 9)}
                signs.append(client.ok(gallery, "add", image=b64(make_image(seed)), **params))
            client.ok(gallery, "update", cont_sign=signs[0]["cont_sign"], brief="renamed")
            client.ok(gallery, "delete", cont_sign=signs[1]["cont_sign"])
            before[gallery] = live_items(server, gallery)
            assert len(before[gallery]) == 5
    with _server(data) as server:
        client = ApiClient(server)
        for n, gallery in enumerate(GALLERY_NAMES):
            assert live_items(server, gallery) == before[gallery]
            # the index is rebuilt too: search and duplicate detection work at once
            hit = client.ok(gallery, "search", image=b64(make_image(n * 10 + 2)))["result"][0]
            assert hit["brief"] == f"{gallery} {n * 10 + 2}"
            assert client.error(gallery, "add", image=b64(make_image(n * 10 + 3)), brief="x") == (
                216681
            )


def test_restart_keeps_issued_tokens_valid(tmp_path: Path, make_image: MakeImage) -> None:
    data = tmp_path / "gallery"
    with _server(data) as server:
        client = ApiClient(server)
        client.ok("similar", "search", image=b64(make_image(1)))
        token = client.token
    with _server(data) as server:
        client = ApiClient(server, token=token)
        client.ok("similar", "search", image=b64(make_image(1)))


def test_store_is_a_sqlite_file_in_wal_mode_under_the_data_folder(tmp_path: Path) -> None:
    import sqlite3

    data = tmp_path / "gallery"
    with _server(data):
        pass
    database = sqlite3.connect(data / "gallery.db")
    try:
        assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        database.close()


#: the store's tables as the first release wrote them (schema 1: no keypoints)
SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    gallery TEXT NOT NULL, cont_sign TEXT NOT NULL, brief TEXT NOT NULL,
    tag1 INTEGER NOT NULL, tag2 INTEGER NOT NULL, phash INTEGER NOT NULL,
    colours BLOB NOT NULL, vector BLOB NOT NULL, added_at REAL NOT NULL, deleted_at REAL,
    PRIMARY KEY (gallery, cont_sign)
) WITHOUT ROWID;
CREATE TABLE tokens (token TEXT PRIMARY KEY, client_id TEXT NOT NULL, issued_at REAL NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def test_a_data_folder_of_the_first_schema_is_upgraded_and_keeps_its_items(
    tmp_path: Path, make_image: MakeImage
) -> None:
    import sqlite3

    from syncd.gallery.images import decode_image_bytes
    from syncd.gallery.index import features_of
    from syncd.gallery.store import GalleryStore

    old = decode_image_bytes(make_image(90, (200, 150)))
    features = features_of(old.thumb)
    data = tmp_path / "gallery"
    data.mkdir()
    database = sqlite3.connect(data / "gallery.db")
    phash = features.phash - (1 << 64) if features.phash >= 1 << 63 else features.phash
    with database:
        database.executescript(SCHEMA_1)
        database.execute(
            "INSERT INTO items VALUES ('same_hq', ?, 'old', 0, 0, ?, ?, ?, 1.0, NULL)",
            (old.cont_sign, phash, features.colours.tobytes(), features.vector.tobytes()),
        )
    database.close()
    with _server(data) as server:
        client = ApiClient(server)
        assert set(live_items(server, "same_hq")) == {old.cont_sign}
        again = b64(make_image(90, (200, 150)))
        assert client.error("same_hq", "add", image=again, brief="again") == 216681
        found = client.ok("same_hq", "search", image=b64(make_image(90, (100, 75))))["result"]
        assert [hit["cont_sign"] for hit in found] == [old.cont_sign]
        # items added from now on keep keypoints: their crops find them
        new = client.ok("same_hq", "add", image=b64(textured_image(5)), brief="new")
        crop_found = client.ok("same_hq", "search", image=b64(crop_copy(5)))["result"]
        assert [hit["cont_sign"] for hit in crop_found] == [new["cont_sign"]]
    store = GalleryStore(data)
    try:
        assert store.schema_version() == 2
    finally:
        store.close()
