"""The /_syncd/ extensions (health, calls, items) and answers to oversized bodies."""

from __future__ import annotations

from collections.abc import Callable

import requests

from syncd.gallery.server import GalleryServer

from .helpers import ApiClient, b64, live_items, tag_params

MakeImage = Callable[..., bytes]


def test_health_reports_live_items_per_gallery(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: MakeImage
) -> None:
    token_client.ok("product", "add", image=b64(make_image(1)))
    body = requests.get(gallery_server.url + "/_syncd/health", timeout=10).json()
    assert body == {"status": "ok", "items": {"same_hq": 0, "similar": 0, "product": 1}}


def test_calls_lists_every_gallery_and_operation(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: MakeImage
) -> None:
    token_client.ok("similar", "search", image=b64(make_image(1)))
    body = requests.get(gallery_server.url + "/_syncd/calls", timeout=10).json()
    assert body["calls"]["similar"] == {"add": 0, "search": 1, "update": 0, "delete": 0}
    assert body["calls"]["same_hq"]["add"] == 0 and body["total"] == 1


def test_items_show_tags_or_class_ids_in_the_gallery_style(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: MakeImage
) -> None:
    similar = token_client.ok(
        "similar", "add", image=b64(make_image(1)), brief="s", **tag_params("similar", 5)
    )["cont_sign"]
    product = token_client.ok(
        "product", "add", image=b64(make_image(2)), brief="p", **tag_params("product", 6, 7)
    )["cont_sign"]
    assert live_items(gallery_server, "similar")[similar] == {
        "cont_sign": similar,
        "brief": "s",
        "tags": [5],
    }
    assert live_items(gallery_server, "product")[product] == {
        "cont_sign": product,
        "brief": "p",
        "class_id1": 6,
        "class_id2": 7,
    }


def test_items_of_an_unknown_gallery_is_a_json_error(gallery_server: GalleryServer) -> None:
    answer = requests.get(gallery_server.url + "/_syncd/items?gallery=nope", timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error_code"] == 216100


def test_body_over_16_mib_answers_216202(token_client: ApiClient) -> None:
    answer = token_client.post(
        "/rest/2.0/image-classify/v1/realtime_search/similar/search",
        {"image": "A" * (16 * 1024 * 1024 + 100)},
    )
    assert answer.json()["error_code"] == 216202
