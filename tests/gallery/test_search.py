"""Search: same-image matching, similarity ranking, tag filters and paging."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from devkit.imagegen import crop, reencode, rescale
from syncd.api.baidu.galleries import GALLERY_NAMES
from syncd.gallery.images import DecodedImage
from syncd.gallery.server import GalleryServer

from .helpers import ApiClient, b64, tag_params

MakeImage = Callable[..., bytes]

UNRELATED_SEEDS = range(100, 130)


def _add(client: ApiClient, gallery: str, image: bytes, brief: str, *tags: int) -> str:
    body = client.ok(gallery, "add", image=b64(image), brief=brief, **tag_params(gallery, *tags))
    return str(body["cont_sign"])


def _signs(client: ApiClient, gallery: str, image: bytes, **params: str) -> list[str]:
    result = client.ok(gallery, "search", image=b64(image), **params)["result"]
    return [hit["cont_sign"] for hit in result]


@pytest.fixture
def populated(token_client: ApiClient, make_image: MakeImage) -> dict[str, str]:
    """same_hq and similar each hold an original (seed 7) and 30 unrelated pictures."""
    signs = {}
    for gallery in ("same_hq", "similar"):
        signs[gallery] = _add(token_client, gallery, make_image(7, (240, 180)), "original")
        for seed in UNRELATED_SEEDS:
            _add(token_client, gallery, make_image(seed, (240, 180)), f"unrelated {seed}")
    return signs


@pytest.mark.parametrize(
    "copy",
    [
        pytest.param(lambda data: reencode(data, "JPEG", quality=40), id="jpeg-q40"),
        pytest.param(lambda data: reencode(data, "PNG"), id="png"),
        pytest.param(lambda data: rescale(data, 0.5), id="half-size"),
        pytest.param(lambda data: rescale(data, 1.6), id="larger"),
        pytest.param(lambda data: rescale(reencode(data, "GIF"), 0.4), id="small-gif"),
        pytest.param(lambda data: crop(data, 0.96), id="trimmed-border"),
    ],
)
def test_same_hq_finds_reencoded_rescaled_and_trimmed_copies_only(
    token_client: ApiClient,
    populated: dict[str, str],
    make_image: MakeImage,
    copy: Callable[[bytes], bytes],
) -> None:
    query = copy(make_image(7, (240, 180)))
    result = token_client.ok("same_hq", "search", image=b64(query))["result"]
    assert [hit["cont_sign"] for hit in result] == [populated["same_hq"]]
    assert 0.5 <= result[0]["score"] <= 1.0


def test_same_hq_finds_nothing_for_an_unrelated_picture(
    token_client: ApiClient, populated: dict[str, str], make_image: MakeImage
) -> None:
    assert _signs(token_client, "same_hq", make_image(999, (240, 180))) == []


def test_same_hq_scores_identical_pixels_1(
    token_client: ApiClient, populated: dict[str, str], make_image: MakeImage
) -> None:
    result = token_client.ok("same_hq", "search", image=b64(make_image(7, (240, 180))))["result"]
    assert result[0]["score"] == 1.0


def test_same_hq_does_not_take_a_heavy_crop_for_the_same_image(
    token_client: ApiClient, populated: dict[str, str], make_image: MakeImage
) -> None:
    assert _signs(token_client, "same_hq", crop(make_image(7, (240, 180)), 0.7)) == []


def test_similar_ranks_a_crop_of_the_picture_above_unrelated_ones(
    token_client: ApiClient, populated: dict[str, str], make_image: MakeImage
) -> None:
    query = crop(make_image(7, (240, 180)), 0.7)
    result = token_client.ok("similar", "search", image=b64(query))["result"]
    assert result[0]["cont_sign"] == populated["similar"]
    assert len(result) == 1 + len(UNRELATED_SEEDS)  # similar search ranks every item
    scores = [hit["score"] for hit in result]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)


def test_similar_ranks_rescaled_copy_first(
    token_client: ApiClient, populated: dict[str, str], make_image: MakeImage
) -> None:
    query = rescale(make_image(7, (240, 180)), 0.5)
    assert _signs(token_client, "similar", query)[0] == populated["similar"]


def test_a_reencoded_copy_counts_as_the_same_image_on_add(
    token_client: ApiClient, make_image: MakeImage
) -> None:
    _add(token_client, "same_hq", make_image(8, (200, 200)), "first")
    copy = reencode(make_image(8, (200, 200)), "JPEG", quality=75)
    assert token_client.error("same_hq", "add", image=b64(copy), brief="copy") == 216681
    # and update/delete by that copy reach the item
    token_client.ok("same_hq", "update", image=b64(copy), brief="renamed")
    token_client.ok("same_hq", "delete", image=b64(copy))


def test_distinct_pictures_are_never_taken_for_the_same_image(
    token_client: ApiClient, make_image: MakeImage
) -> None:
    for seed in range(60):
        _add(token_client, "similar", make_image(seed, (48, 48)), str(seed))


@pytest.mark.parametrize("gallery", ["same_hq", "similar"])
def test_tags_filter_with_and_or_logic(
    token_client: ApiClient, make_image: MakeImage, gallery: str
) -> None:
    image = make_image(9)
    # same_hq finds only the image itself, so give each gallery item its own copy
    if gallery == "same_hq":
        a = _add(token_client, gallery, image, "a", 1, 2)
        expect = {"1": {a}, "2": {a}, "3": set(), "1,2": {a}, "1,3": set()}
        for tags, wanted in expect.items():
            assert set(_signs(token_client, gallery, image, tags=tags)) == wanted, tags
        assert set(_signs(token_client, gallery, image, tags="1,3", tag_logic="1")) == {a}
        return
    a = _add(token_client, gallery, make_image(10), "a", 1, 2)
    b = _add(token_client, gallery, make_image(11), "b", 2, 3)
    c = _add(token_client, gallery, make_image(12), "c", 4)
    d = _add(token_client, gallery, make_image(13), "d")
    cases = {
        ("", ""): {a, b, c, d},
        ("2", ""): {a, b},
        ("1,2", ""): {a},
        ("1,2", "0"): {a},
        ("1,2", "1"): {a, b},
        ("3,4", "1"): {b, c},
        ("3,4", "0"): set(),
        ("5", "1"): set(),
    }
    for (tags, logic), wanted in cases.items():
        params = {"tags": tags, "tag_logic": logic}
        assert set(_signs(token_client, gallery, image, **params)) == wanted, params


def test_product_class_ids_filter_by_position(
    token_client: ApiClient, make_image: MakeImage
) -> None:
    a = _add(token_client, "product", make_image(20), "a", 1, 2)
    b = _add(token_client, "product", make_image(21), "b", 1, 3)
    c = _add(token_client, "product", make_image(22), "c", 2, 1)
    d = _add(token_client, "product", make_image(23), "d", 5)
    image = make_image(24)
    cases = {
        (("class_id1", "1"),): {a, b},
        (("class_id1", "2"),): {c},
        (("class_id2", "1"),): {c},
        (("class_id1", "1"), ("class_id2", "3")): {b},
        (("class_id1", "1"), ("class_id2", "1")): set(),
        (("class_id1", "5"), ("class_id2", "3"), ("tag_logic", "1")): {b, d},
        (): {a, b, c, d},
    }
    for params, wanted in cases.items():
        assert set(_signs(token_client, "product", image, **dict(params))) == wanted, params


def _fill(server: GalleryServer, gallery: str, count: int) -> None:
    """Put ``count`` distinct random pictures straight into the gallery (fast set-up)."""
    rng = np.random.default_rng(5)
    for i in range(count):
        thumb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        image = DecodedImage(f"{i + 1},{i + 1}", 32, 32, "PNG", thumb)
        server.app.galleries.add(gallery, image, f"item {i}", 0, 0)


@pytest.mark.parametrize("gallery", ["similar", "product"])
def test_search_answers_300_results_by_default_and_pages_with_pn_rn(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: MakeImage, gallery: str
) -> None:
    _fill(gallery_server, gallery, 450)
    query = b64(make_image(1))
    first = token_client.ok(gallery, "search", image=query)
    assert (first["result_num"], first["has_more"]) == (300, True)
    everything = _signs(token_client, gallery, make_image(1), rn="1000")
    assert len(everything) == 450
    assert [hit["cont_sign"] for hit in first["result"]] == everything[:300]
    page = token_client.ok(gallery, "search", image=query, pn="100", rn="50")
    assert [hit["cont_sign"] for hit in page["result"]] == everything[100:150]
    assert page["has_more"] is True
    last = token_client.ok(gallery, "search", image=query, pn="400", rn="50")
    assert (last["result_num"], last["has_more"]) == (50, False)
    beyond = token_client.ok(gallery, "search", image=query, pn="450", rn="10")
    assert (beyond["result"], beyond["has_more"]) == ([], False)


def test_search_never_answers_past_position_1000(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: MakeImage
) -> None:
    _fill(gallery_server, "similar", 1010)
    query = b64(make_image(1))
    page = token_client.ok("similar", "search", image=query, pn="900", rn="500")
    assert (page["result_num"], page["has_more"]) == (100, False)
    assert token_client.ok("similar", "search", image=query, pn="1000")["result"] == []
    full = token_client.ok("similar", "search", image=query, pn="0", rn="1000")
    assert (full["result_num"], full["has_more"]) == (1000, False)


@pytest.mark.parametrize("gallery", GALLERY_NAMES)
def test_search_of_an_empty_gallery_answers_no_result(
    token_client: ApiClient, make_image: MakeImage, gallery: str
) -> None:
    body = token_client.ok(gallery, "search", image=b64(make_image(1)))
    assert (body["result_num"], body["result"], body["has_more"]) == (0, [], False)
