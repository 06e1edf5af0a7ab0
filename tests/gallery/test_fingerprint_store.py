"""The same-image fingerprints kept in the store's file: one per item, gone with it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from syncd.gallery.server import GalleryServer

from .helpers import API_KEY, SECRET_KEY, ApiClient, b64

MakeImage = Callable[..., bytes]


def _fingerprinted(data: Path) -> list[tuple[str, str]]:
    database = sqlite3.connect(data / "gallery.db")
    try:
        rows = database.execute("SELECT gallery, cont_sign FROM fingerprints").fetchall()
    finally:
        database.close()
    return sorted(rows)


def test_each_item_keeps_a_fingerprint_until_it_is_deleted(
    tmp_path: Path, make_image: MakeImage
) -> None:
    data = tmp_path / "gallery"
    with GalleryServer(data, api_key=API_KEY, secret_key=SECRET_KEY) as server:
        client = ApiClient(server)
        kept = client.ok("same_hq", "add", image=b64(make_image(1, (200, 150))), brief="k")
        gone = client.ok("similar", "add", image=b64(make_image(2)), brief="g")
        client.ok("similar", "delete", cont_sign=gone["cont_sign"])
    assert _fingerprinted(data) == [("same_hq", kept["cont_sign"])]


def test_a_fingerprint_a_crash_left_without_its_item_is_swept_at_the_next_start(
    tmp_path: Path, make_image: MakeImage
) -> None:
    data = tmp_path / "gallery"
    with GalleryServer(data, api_key=API_KEY, secret_key=SECRET_KEY) as server:
        sign = ApiClient(server).ok("similar", "add", image=b64(make_image(3)), brief="x")
    database = sqlite3.connect(data / "gallery.db")
    try:
        # a crash between the fingerprint and the item of an add
        database.execute(
            "INSERT INTO fingerprints (gallery, cont_sign, width, height, grey)"
            " VALUES ('similar', '1,2', 64, 64, zeroblob(4096))"
        )
        database.commit()
    finally:
        database.close()
    with GalleryServer(data, api_key=API_KEY, secret_key=SECRET_KEY):
        pass
    assert _fingerprinted(data) == [("similar", sign["cont_sign"])]
