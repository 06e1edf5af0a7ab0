"""Same-image search finds partial copies ("完全相同或局部相同"), and only them.

A crop keeping 75 % of each side (56 % of the picture), rescaled and re-encoded, finds
its original as the first hit; unrelated pictures find nothing. Over real HTTP, against
a gallery of 200 varied, textured pictures.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devkit.imagegen import crop, reencode, rescale
from devkit.textured import crop_copy, textured_image
from syncd.gallery.server import GalleryServer

from .helpers import API_KEY, SECRET_KEY, ApiClient, b64, get_token

ORIGINALS = 200
UNRELATED_FIRST_SEED = 50_000
#: share of crops that must find their original first
MIN_RECALL = 0.95

MakeImage = Callable[..., bytes]


def _in_parallel(server: GalleryServer, calls: list[dict[str, str]], op: str) -> list[dict]:  # type: ignore[type-arg]
    """Answers of same_hq ``op`` with each of ``calls``' parameters, two clients at a time."""
    token = get_token(server)

    def one(params: dict[str, str]) -> dict:  # type: ignore[type-arg]
        return ApiClient(server, token=token).call("same_hq", op, **params)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, calls))


@pytest.fixture(scope="module")
def stocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GalleryServer, list[str]]]:
    """A gallery whose same_hq holds ORIGINALS textured pictures; their cont_signs."""
    server = GalleryServer(
        tmp_path_factory.mktemp("stocked") / "gallery", api_key=API_KEY, secret_key=SECRET_KEY
    )
    with server:
        adds = [{"image": b64(textured_image(n)), "brief": str(n)} for n in range(ORIGINALS)]
        answers = _in_parallel(server, adds, "add")
        assert all("error_code" not in answer for answer in answers)
        yield server, [str(answer["cont_sign"]) for answer in answers]


def test_crops_of_stored_pictures_find_their_original_first(
    stocked: tuple[GalleryServer, list[str]],
) -> None:
    server, signs = stocked
    searches = [{"image": b64(crop_copy(seed))} for seed in range(ORIGINALS)]
    answers = _in_parallel(server, searches, "search")
    first = [answer["result"][0]["cont_sign"] if answer["result"] else None for answer in answers]
    found = sum(hit == sign for hit, sign in zip(first, signs, strict=True))
    assert found >= MIN_RECALL * ORIGINALS, f"{found} of {ORIGINALS} crops found their original"
    for answer in answers:
        assert all(0.5 <= hit["score"] <= 1.0 for hit in answer["result"])


def test_unrelated_pictures_find_nothing(stocked: tuple[GalleryServer, list[str]]) -> None:
    server, _ = stocked
    seeds = range(UNRELATED_FIRST_SEED, UNRELATED_FIRST_SEED + ORIGINALS)
    searches = [{"image": b64(textured_image(seed))} for seed in seeds]
    answers = _in_parallel(server, searches, "search")
    hit = [seed for seed, answer in zip(seeds, answers, strict=True) if answer["result"]]
    assert hit == []


def test_a_crop_of_the_generated_pictures_finds_its_original(
    token_client: ApiClient, make_image: MakeImage
) -> None:
    original = make_image(7, (480, 360))
    sign = token_client.ok("same_hq", "add", image=b64(original), brief="o")["cont_sign"]
    for seed in range(30, 40):
        token_client.ok("same_hq", "add", image=b64(make_image(seed, (480, 360))), brief="u")
    query = reencode(rescale(crop(original, 0.75, "PNG"), 0.8, "PNG"), "JPEG", quality=75)
    result = token_client.ok("same_hq", "search", image=b64(query))["result"]
    assert [hit["cont_sign"] for hit in result] == [sign]


def test_a_crop_is_an_item_of_its_own_on_add(token_client: ApiClient) -> None:
    original = token_client.ok("same_hq", "add", image=b64(textured_image(1)), brief="o")
    part = token_client.ok("same_hq", "add", image=b64(crop_copy(1)), brief="crop")
    assert part["cont_sign"] != original["cont_sign"]
    # each finds itself first, and the other as its partial copy
    by_crop = token_client.ok("same_hq", "search", image=b64(crop_copy(1)))["result"]
    assert [hit["cont_sign"] for hit in by_crop] == [part["cont_sign"], original["cont_sign"]]
    assert by_crop[0]["score"] == 1.0 > by_crop[1]["score"]


def test_a_partial_copy_search_honours_the_tag_filter(token_client: ApiClient) -> None:
    added = token_client.ok("same_hq", "add", image=b64(textured_image(2)), brief="o", tags="7")
    query = b64(crop_copy(2))
    tagged = token_client.ok("same_hq", "search", image=query, tags="7")["result"]
    assert [hit["cont_sign"] for hit in tagged] == [added["cont_sign"]]
    assert token_client.ok("same_hq", "search", image=query, tags="8")["result"] == []


def test_partial_copies_are_found_after_a_restart_and_while_deletion_is_pending(
    tmp_path: Path,
) -> None:
    with GalleryServer(tmp_path / "gallery", delete_latency=3600.0) as server:
        client = ApiClient(server)
        kept = client.ok("same_hq", "add", image=b64(textured_image(3)), brief="kept")["cont_sign"]
        gone = client.ok("same_hq", "add", image=b64(textured_image(4)), brief="gone")["cont_sign"]
        client.ok("same_hq", "delete", cont_sign=gone)
    with GalleryServer(tmp_path / "gallery", delete_latency=3600.0) as server:
        client = ApiClient(server)
        for seed, sign in ((3, kept), (4, gone)):
            result = client.ok("same_hq", "search", image=b64(crop_copy(seed)))["result"]
            assert [hit["cont_sign"] for hit in result] == [sign]
    # once the deletion is due, its keypoints are gone too
    with GalleryServer(tmp_path / "gallery") as server:
        client = ApiClient(server)
        assert client.ok("same_hq", "search", image=b64(crop_copy(4)))["result"] == []
        found = client.ok("same_hq", "search", image=b64(crop_copy(3)))["result"]
        assert [hit["cont_sign"] for hit in found] == [kept]
