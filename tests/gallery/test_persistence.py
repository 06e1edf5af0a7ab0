"""The gallery keeps every item, brief, tag and token across restarts (SQLite)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from syncd.gallery.server import GalleryServer
from syncd.protocol import GALLERY_NAMES

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
