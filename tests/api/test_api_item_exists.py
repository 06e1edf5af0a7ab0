"""A 216681 answer names the item the gallery already holds (docs/rules.md, Duplicate adds):
the client says which."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devkit.imagegen import reencode
from syncd.api.baidu.client import ImageSearchClient
from syncd.api.baidu.galleries import GALLERY_NAMES, GalleryName
from syncd.config import AuthMode
from syncd.errors import ItemExistsError
from syncd.gallery.server import GalleryServer

from .tiny_server import answering, serving

MakeImage = Callable[..., bytes]

# the real API's answer to an add of an image it already holds
REAL_216681_ANSWER = (
    b'{"log_id": 7673034800508489684, "error_code": 216681,'
    b' "cont_sign": "20175919,384875704", "error_msg": "item has existed"}'
)


@pytest.fixture(params=["token", "bce"])
def client(
    gallery_server: GalleryServer, request: pytest.FixtureRequest
) -> Iterator[ImageSearchClient]:
    auth: AuthMode = request.param
    with ImageSearchClient(
        gallery_server.url, api_key="test-ak", secret_key="test-sk", auth=auth, timeout=10
    ) as made:
        yield made


def test_item_exists_carries_the_cont_sign_of_the_real_apis_answer() -> None:
    with (
        serving(answering(REAL_216681_ANSWER)) as url,
        ImageSearchClient(url, api_key="ak", secret_key="sk") as client,
        pytest.raises(ItemExistsError) as info,
    ):
        client.add("same_hq", image=b"GIF89a", brief="x")
    assert info.value.cont_sign == "20175919,384875704"
    assert (info.value.code, info.value.log_id) == (216681, 7673034800508489684)
    assert "20175919,384875704" in repr(info.value)


@pytest.mark.parametrize(
    "answer",
    [
        b'{"log_id": 5, "error_code": 216681, "error_msg": "item exist"}',
        b'{"log_id": 5, "error_code": 216681, "cont_sign": "", "error_msg": "item exist"}',
        b'{"log_id": 5, "error_code": 216681, "cont_sign": 42, "error_msg": "item exist"}',
        b'{"log_id": 5, "error_code": 216681, "cont_sign": "not,a sign", "error_msg": "x"}',
    ],
    ids=["absent", "empty", "a-number", "garbled"],
)
def test_item_exists_without_a_readable_cont_sign_says_none(answer: bytes) -> None:
    with (
        serving(answering(answer)) as url,
        ImageSearchClient(url, api_key="ak", secret_key="sk", auth="bce") as client,
        pytest.raises(ItemExistsError) as info,
    ):
        client.add("similar", image=b"GIF89a", brief="x")
    assert info.value.cont_sign is None and info.value.code == 216681


def test_adding_an_image_again_names_the_item_already_held(
    client: ImageSearchClient, make_image: MakeImage
) -> None:
    held = client.add("same_hq", image=make_image(60, (160, 120)), brief="a").cont_sign
    with pytest.raises(ItemExistsError) as info:
        client.add("same_hq", image=make_image(60, (160, 120)), brief="b")
    assert info.value.cont_sign == held


@pytest.mark.parametrize("gallery", GALLERY_NAMES)
def test_adding_a_reencoded_copy_names_the_original_item(
    client: ImageSearchClient, make_image: MakeImage, gallery: GalleryName
) -> None:
    original = make_image(61, (200, 150))
    held = client.add(gallery, image=original, brief="original").cont_sign
    with pytest.raises(ItemExistsError) as info:
        client.add(gallery, image=reencode(original, quality=60), brief="copy")
    assert info.value.cont_sign == held
