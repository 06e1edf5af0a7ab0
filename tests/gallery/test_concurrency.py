"""Many clients at once: every call is answered and the gallery stays consistent."""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Callable
from pathlib import Path

from syncd.gallery.server import GalleryServer

from .helpers import ApiClient, b64, get_token, live_items

MakeImage = Callable[..., bytes]


def test_concurrent_adds_of_distinct_images_all_land(
    gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    token = get_token(gallery_server)
    images = [b64(make_image(seed)) for seed in range(40)]

    def add(index: int) -> str:
        client = ApiClient(gallery_server, token=token)
        return str(client.ok("similar", "add", image=images[index], brief=str(index))["cont_sign"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        signs = list(pool.map(add, range(len(images))))
    items = live_items(gallery_server, "similar")
    assert set(items) == set(signs) and len(signs) == len(images)
    assert {item["brief"] for item in items.values()} == {str(i) for i in range(len(images))}


def test_concurrent_adds_of_one_image_make_one_item(
    gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    token = get_token(gallery_server)
    image = b64(make_image(1))

    def add(index: int) -> str:
        body = ApiClient(gallery_server, token=token).call("same_hq", "add", image=image, brief="b")
        # a 216681 answer names the held item too: the error code tells them apart
        return f"error {body['error_code']}" if "error_code" in body else "ok"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = collections.Counter(pool.map(add, range(16)))
    assert outcomes == {"ok": 1, "error 216681": 15}
    assert len(live_items(gallery_server, "same_hq")) == 1


def test_a_stopped_server_starts_again_at_the_same_url_with_its_items(
    tmp_path: Path, make_image: MakeImage
) -> None:
    server = GalleryServer(tmp_path / "gallery")
    server.start()
    url = server.url
    sign = ApiClient(server).ok("similar", "add", image=b64(make_image(3)))["cont_sign"]
    server.stop()
    server.start()
    try:
        assert server.url == url
        assert set(live_items(server, "similar")) == {sign}
    finally:
        server.stop()
