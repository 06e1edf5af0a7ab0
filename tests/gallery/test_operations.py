"""Every operation of every gallery, in both auth modes, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devkit.imagegen import reencode
from syncd.api.baidu.galleries import GALLERY_NAMES
from syncd.gallery.server import GalleryServer

from .helpers import ApiClient, b64, item_tags, live_items, tag_params

pytestmark = pytest.mark.parametrize("gallery", GALLERY_NAMES)

MakeImage = Callable[..., bytes]


def _add(client: ApiClient, gallery: str, image: bytes, brief: str, *tags: int) -> str:
    body = client.ok(gallery, "add", image=b64(image), brief=brief, **tag_params(gallery, *tags))
    sign = body["cont_sign"]
    assert isinstance(sign, str)
    return sign


def test_add_returns_a_cont_sign_of_two_uint32(
    client: ApiClient, gallery_server: GalleryServer, gallery: str, make_image: MakeImage
) -> None:
    sign = _add(client, gallery, make_image(1), '{"lib":"a","path":"x.jpg"}', 100, 11)
    first, second = sign.split(",")
    assert 0 <= int(first) < 2**32 and 0 <= int(second) < 2**32
    item = live_items(gallery_server, gallery)[sign]
    assert item["brief"] == '{"lib":"a","path":"x.jpg"}'
    assert item_tags(item) == [100, 11]


def test_cont_sign_depends_only_on_the_decoded_pixels(
    client: ApiClient, gallery: str, make_image: MakeImage
) -> None:
    png = make_image(2, fmt="PNG")
    sign = _add(client, gallery, png, "png")
    client.ok(gallery, "delete", cont_sign=sign)
    # the same pixels as BMP are the same picture: same cont_sign
    assert _add(client, gallery, make_image(2, fmt="BMP"), "bmp") == sign


def test_search_finds_the_added_image_with_its_brief(
    client: ApiClient, gallery: str, make_image: MakeImage
) -> None:
    sign = _add(client, gallery, make_image(3), "three")
    _add(client, gallery, make_image(4), "four")
    body = client.ok(gallery, "search", image=b64(make_image(3)))
    assert body["result"][0] == {"cont_sign": sign, "brief": "three", "score": 1.0}
    assert body["result_num"] == len(body["result"])
    assert body["has_more"] is False


def test_update_by_cont_sign_changes_brief_and_tags(
    client: ApiClient, gallery_server: GalleryServer, gallery: str, make_image: MakeImage
) -> None:
    sign = _add(client, gallery, make_image(5), "old", 1, 2)
    client.ok(gallery, "update", cont_sign=sign, brief="new", **tag_params(gallery, 7, 8))
    item = live_items(gallery_server, gallery)[sign]
    assert (item["brief"], item_tags(item)) == ("new", [7, 8])
    found = client.ok(gallery, "search", image=b64(make_image(5)))["result"][0]
    assert (found["cont_sign"], found["brief"]) == (sign, "new")


def test_update_of_brief_alone_keeps_the_tags(
    client: ApiClient, gallery_server: GalleryServer, gallery: str, make_image: MakeImage
) -> None:
    sign = _add(client, gallery, make_image(6), "old", 3, 4)
    client.ok(gallery, "update", cont_sign=sign, brief="renamed")
    item = live_items(gallery_server, gallery)[sign]
    assert (item["brief"], item_tags(item)) == ("renamed", [3, 4])


def test_update_by_image_finds_the_item_of_that_image(
    client: ApiClient, gallery_server: GalleryServer, gallery: str, make_image: MakeImage
) -> None:
    sign = _add(client, gallery, make_image(7), "old")
    other = _add(client, gallery, make_image(8), "other")
    client.ok(gallery, "update", image=b64(make_image(7)), brief="by image")
    items = live_items(gallery_server, gallery)
    assert items[sign]["brief"] == "by image"
    assert items[other]["brief"] == "other"


def test_delete_by_cont_sign_removes_the_item(
    client: ApiClient, gallery_server: GalleryServer, gallery: str, make_image: MakeImage
) -> None:
    sign = _add(client, gallery, make_image(9), "nine")
    kept = _add(client, gallery, make_image(10), "ten")
    body = client.ok(gallery, "delete", cont_sign=sign)
    assert set(body) == {"log_id"}
    assert set(live_items(gallery_server, gallery)) == {kept}
    found = client.ok(gallery, "search", image=b64(make_image(9)))["result"]
    assert sign not in {hit["cont_sign"] for hit in found}


def test_delete_by_image_removes_the_item(
    client: ApiClient, gallery_server: GalleryServer, gallery: str, make_image: MakeImage
) -> None:
    _add(client, gallery, make_image(11), "eleven")
    kept = _add(client, gallery, make_image(12), "twelve")
    client.ok(gallery, "delete", image=b64(make_image(11)))
    assert set(live_items(gallery_server, gallery)) == {kept}


def test_batch_delete_removes_every_named_item(
    client: ApiClient, gallery_server: GalleryServer, gallery: str, make_image: MakeImage
) -> None:
    signs = [_add(client, gallery, make_image(20 + i), f"b{i}") for i in range(5)]
    client.ok(gallery, "delete", cont_sign=";".join(signs[:4]))
    assert set(live_items(gallery_server, gallery)) == {signs[4]}


def test_batch_delete_deletes_what_exists_and_ignores_unknown_signs(
    client: ApiClient, gallery_server: GalleryServer, gallery: str, make_image: MakeImage
) -> None:
    sign = _add(client, gallery, make_image(30), "thirty")
    client.ok(gallery, "delete", cont_sign=f"1,2;{sign};3,4")
    assert live_items(gallery_server, gallery) == {}


def test_add_of_an_image_already_present_answers_216681(
    client: ApiClient, gallery: str, make_image: MakeImage
) -> None:
    _add(client, gallery, make_image(40), "first")
    assert client.error(gallery, "add", image=b64(make_image(40)), brief="again") == 216681


def test_216681_answer_names_the_item_already_held(
    client: ApiClient, gallery: str, make_image: MakeImage
) -> None:
    held = _add(client, gallery, make_image(42, (160, 120)), "first")
    copy = reencode(make_image(42, (160, 120)), "JPEG", quality=60)
    body = client.call(gallery, "add", image=b64(copy), brief="copy")
    assert (body["error_code"], body["cont_sign"]) == (216681, held)
    assert isinstance(body["log_id"], int) and body["error_msg"]


def test_other_errors_name_no_cont_sign(client: ApiClient, gallery: str) -> None:
    body = client.call(gallery, "add", image="not base64!", brief="x")
    assert body["error_code"] != 216681 and "cont_sign" not in body


def test_a_deleted_image_can_be_added_again(
    client: ApiClient, gallery: str, make_image: MakeImage
) -> None:
    sign = _add(client, gallery, make_image(41), "first")
    client.ok(gallery, "delete", cont_sign=sign)
    assert _add(client, gallery, make_image(41), "second") == sign


def test_calls_are_counted_per_gallery_and_operation(
    client: ApiClient, gallery_server: GalleryServer, gallery: str, make_image: MakeImage
) -> None:
    gallery_server.reset_counts()
    sign = _add(client, gallery, make_image(50), "x")
    client.error(gallery, "add", image=b64(make_image(50)), brief="x")
    client.ok(gallery, "search", image=b64(make_image(50)))
    client.ok(gallery, "update", cont_sign=sign, brief="y")
    client.ok(gallery, "delete", cont_sign=sign)
    assert gallery_server.call_counts() == {
        (gallery, "add"): 2,
        (gallery, "search"): 1,
        (gallery, "update"): 1,
        (gallery, "delete"): 1,
    }
