"""Deletion latency: deleted items stay searchable and block a re-add for a while."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.gallery.server import GalleryServer

from .helpers import API_KEY, SECRET_KEY, ApiClient, b64, live_items

MakeImage = Callable[..., bytes]


@pytest.fixture
def slow_delete_server(tmp_path: Path) -> Iterator[GalleryServer]:
    """A gallery whose deletions take an hour to become effective."""
    server = GalleryServer(
        tmp_path / "gallery", api_key=API_KEY, secret_key=SECRET_KEY, delete_latency=3600.0
    )
    with server:
        yield server


@pytest.mark.parametrize("gallery", ["same_hq", "similar", "product"])
def test_deleted_item_is_still_found_by_search_during_the_latency(
    slow_delete_server: GalleryServer, make_image: MakeImage, gallery: str
) -> None:
    client = ApiClient(slow_delete_server)
    sign = client.ok(gallery, "add", image=b64(make_image(1)), brief="gone soon")["cont_sign"]
    client.ok(gallery, "delete", cont_sign=sign)
    result = client.ok(gallery, "search", image=b64(make_image(1)))["result"]
    assert [hit["cont_sign"] for hit in result] == [sign]
    assert live_items(slow_delete_server, gallery) == {}


def test_deleted_image_blocks_a_re_add_during_the_latency(
    slow_delete_server: GalleryServer, make_image: MakeImage
) -> None:
    client = ApiClient(slow_delete_server)
    sign = client.ok("same_hq", "add", image=b64(make_image(2)), brief="b")["cont_sign"]
    client.ok("same_hq", "delete", image=b64(make_image(2)))
    body = client.call("same_hq", "add", image=b64(make_image(2)), brief="b")
    # the answer names the deleted item, as the real service keeps it for the latency
    assert (body["error_code"], body["cont_sign"]) == (216681, sign)
    # but the item is deleted: update and delete no longer reach it
    assert client.error("same_hq", "update", cont_sign=sign, brief="c") == 216680
    assert client.error("same_hq", "delete", cont_sign=sign) == 216680


def test_deleted_item_is_purged_once_the_latency_has_passed(
    tmp_path: Path, make_image: MakeImage
) -> None:
    with GalleryServer(tmp_path / "gallery", delete_latency=0.3) as server:
        client = ApiClient(server)
        sign = client.ok("similar", "add", image=b64(make_image(3)))["cont_sign"]
        client.ok("similar", "delete", cont_sign=sign)
        time.sleep(0.5)
        assert client.ok("similar", "search", image=b64(make_image(3)))["result"] == []
        assert client.ok("similar", "add", image=b64(make_image(3)))["cont_sign"] == sign


def test_deletion_latency_survives_a_restart(tmp_path: Path, make_image: MakeImage) -> None:
    with GalleryServer(tmp_path / "gallery", delete_latency=3600.0) as server:
        client = ApiClient(server)
        sign = client.ok("similar", "add", image=b64(make_image(4)))["cont_sign"]
        client.ok("similar", "delete", cont_sign=sign)
    with GalleryServer(tmp_path / "gallery", delete_latency=3600.0) as server:
        client = ApiClient(server)
        result = client.ok("similar", "search", image=b64(make_image(4)))["result"]
        assert [hit["cont_sign"] for hit in result] == [sign]
        body = client.call("similar", "add", image=b64(make_image(4)))
        assert (body["error_code"], body["cont_sign"]) == (216681, sign)
        assert live_items(server, "similar") == {}
    # restarted with no latency: the old deletion is long due, the image can come back
    with GalleryServer(tmp_path / "gallery") as server:
        client = ApiClient(server)
        assert client.ok("similar", "add", image=b64(make_image(4)))["cont_sign"] == sign
