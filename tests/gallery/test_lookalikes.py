"""Same-image matching on a hostile share: look-alike pictures stay apart, copies still match.

Gradients cut in bands, stripes, checkerboards, near shades of one colour, pages of
text and line art share coarse thumbnails and perceptual hashes. Each is its own item
(no 216681 between two of them), and a search with a re-encoded or rescaled copy of one
lists that one only, scored as a copy (0.9 or more). Over real HTTP.
"""

from __future__ import annotations

import collections
import concurrent.futures
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from devkit.imagegen import make_image, reencode, rescale
from syncd.gallery.index import Hit
from syncd.gallery.same_image import SameImages
from syncd.gallery.server import GalleryServer

from .helpers import API_KEY, SECRET_KEY, ApiClient, b64, get_token, live_items
from .lookalikes import copies, encoded, flat, issue_gradients, lookalikes, resized, text_page

PICTURES = lookalikes()
#: the lowest score of a copy (the gallery's documented floor for same-image copies)
COPY_SCORE = 0.9
SAMPLES = Path(__file__).resolve().parents[2] / "sample-images"
#: the client, and per gallery the answer of each add by picture name
Shelved = tuple[ApiClient, dict[str, dict[str, dict[str, Any]]]]


def _signs(client: ApiClient, gallery: str, image: bytes) -> list[str]:
    result = client.ok(gallery, "search", image=b64(image))["result"]
    return [hit["cont_sign"] for hit in result]


@pytest.fixture(scope="module")
def shelved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shelved]:
    """A gallery whose same_hq and similar each hold every look-alike picture; the client
    and, per gallery, each add's answer by picture name."""
    server = GalleryServer(
        tmp_path_factory.mktemp("lookalikes") / "gallery", api_key=API_KEY, secret_key=SECRET_KEY
    )
    with server:
        client = ApiClient(server)
        answers = {
            gallery: {
                name: client.call(gallery, "add", image=b64(encoded(picture)), brief=name)
                for name, picture in PICTURES.items()
            }
            for gallery in ("same_hq", "similar")
        }
        yield client, answers


def test_there_are_at_least_30_lookalikes() -> None:
    assert len(PICTURES) >= 30


@pytest.mark.parametrize("gallery", ["same_hq", "similar"])
def test_every_lookalike_is_added_as_an_item_of_its_own(
    shelved: Shelved,
    gallery: str,
) -> None:
    client, answers = shelved
    refused = {name: body for name, body in answers[gallery].items() if "error_code" in body}
    assert refused == {}
    signs = {body["cont_sign"] for body in answers[gallery].values()}
    assert len(signs) == len(PICTURES)
    assert set(live_items(client.server, gallery)) == signs


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_copies_of_a_lookalike_find_it_and_no_other(
    shelved: Shelved,
    name: str,
) -> None:
    client, answers = shelved
    sign = answers["same_hq"][name]["cont_sign"]
    found = {}
    for kind, copy in copies(PICTURES[name]).items():
        result = client.ok("same_hq", "search", image=b64(copy))["result"]
        found[kind] = [(hit["cont_sign"], hit["score"] >= COPY_SCORE) for hit in result]
    assert found == {kind: [(sign, True)] for kind in found}


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_a_copy_of_a_lookalike_is_refused_on_add_naming_it(
    shelved: Shelved,
    name: str,
) -> None:
    client, answers = shelved
    picture = PICTURES[name]
    for copy in (encoded(picture, "JPEG", 60), encoded(resized(picture, 0.5), "JPEG", 85)):
        body = client.call("similar", "add", image=b64(copy), brief="copy")
        assert (body.get("error_code"), body.get("cont_sign")) == (
            216681,
            answers["similar"][name]["cont_sign"],
        )


def test_the_issue_stripe_gradients_stay_four_items(token_client: ApiClient) -> None:
    gradients = issue_gradients()
    assert len({picture.size for picture in gradients.values()}) == 4
    signs = {}
    for name, picture in gradients.items():
        signs[name] = token_client.ok("same_hq", "add", image=b64(encoded(picture)), brief=name)[
            "cont_sign"
        ]
    assert len(set(signs.values())) == 4
    for name, picture in gradients.items():
        result = token_client.ok("same_hq", "search", image=b64(encoded(picture)))["result"]
        assert [(hit["cont_sign"], hit["score"]) for hit in result] == [(signs[name], 1.0)]
        assert _signs(token_client, "same_hq", encoded(resized(picture, 0.5), "JPEG", 75)) == [
            signs[name]
        ]


def test_a_stretched_picture_is_not_the_same_image(token_client: ApiClient) -> None:
    page = text_page(["Minutes of the meeting", "Present: all", "Next: Friday"])
    sign = token_client.ok("same_hq", "add", image=b64(encoded(page)), brief="page")["cont_sign"]
    taller = page.resize((page.width, round(page.height * 1.15)), Image.Resampling.LANCZOS)
    assert _signs(token_client, "same_hq", encoded(taller)) == []
    added = token_client.ok("same_hq", "add", image=b64(encoded(taller)), brief="taller")
    assert added["cont_sign"] != sign


def test_update_and_delete_by_image_reach_only_the_shade_it_shows(
    gallery_server: GalleryServer, token_client: ApiClient
) -> None:
    shades = {level: flat((level, level, level), (320, 240)) for level in (120, 132, 144)}
    signs = {
        level: token_client.ok("similar", "add", image=b64(encoded(picture)), brief=str(level))[
            "cont_sign"
        ]
        for level, picture in shades.items()
    }
    copy = encoded(shades[132], "JPEG", 70)
    token_client.ok("similar", "update", image=b64(copy), brief="renamed")
    token_client.ok("similar", "delete", image=b64(copy))
    items = live_items(gallery_server, "similar")
    assert {sign: item["brief"] for sign, item in items.items()} == {
        signs[120]: "120",
        signs[144]: "144",
    }


def test_copies_of_the_sample_photos_find_them_only(token_client: ApiClient) -> None:
    photos = {path.name: path.read_bytes() for path in sorted(SAMPLES.rglob("*.*"))}
    assert len(photos) >= 8
    signs = {
        name: token_client.ok("same_hq", "add", image=b64(raw), brief=name)["cont_sign"]
        for name, raw in photos.items()
    }
    for name, raw in photos.items():
        found = {
            kind: _signs(token_client, "same_hq", copy)
            for kind, copy in {
                "jpeg-q60": reencode(raw, "JPEG", 60),
                "jpeg-q95": reencode(raw, "JPEG", 95),
                "png": reencode(raw, "PNG"),
                "half": rescale(raw, 0.5),
                "double": rescale(raw, 2.0),
            }.items()
        }
        assert found == {kind: [signs[name]] for kind in found}, name


def test_items_stored_before_fingerprints_are_still_found_by_their_copies(
    tmp_path: Path,
) -> None:
    data = tmp_path / "gallery"
    photo = make_image(31, (320, 240))
    with GalleryServer(data, api_key=API_KEY, secret_key=SECRET_KEY) as server:
        client = ApiClient(server)
        signs = {
            gallery: client.ok(gallery, "add", image=b64(photo), brief="old")["cont_sign"]
            for gallery in ("same_hq", "similar")
        }
    # the store as the version before fingerprints left it
    database = sqlite3.connect(data / "gallery.db")
    try:
        database.execute("DROP TABLE fingerprints")
        database.commit()
    finally:
        database.close()
    with GalleryServer(data, api_key=API_KEY, secret_key=SECRET_KEY) as server:
        client = ApiClient(server)
        copy = reencode(rescale(photo, 0.75), "JPEG", 70)
        assert _signs(client, "same_hq", copy) == [signs["same_hq"]]
        body = client.call("similar", "add", image=b64(copy), brief="copy")
        assert (body.get("error_code"), body.get("cont_sign")) == (216681, signs["similar"])
        # a new item keeps a fingerprint again: its look-alike is an item of its own
        dark, lighter = (encoded(flat((g, g, g), (320, 240))) for g in (90, 98))
        first = client.ok("same_hq", "add", image=b64(dark), brief="dark")
        second = client.ok("same_hq", "add", image=b64(lighter), brief="lighter")
        assert first["cont_sign"] != second["cont_sign"]


def test_concurrent_adds_of_copies_of_one_lookalike_make_one_item(
    gallery_server: GalleryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fingerprints read slowly (a cold disk): the adds' checks overlap for sure
    confirmed = SameImages.confirmed

    def slowly_confirmed(self: SameImages, *args: Any) -> list[Hit]:
        time.sleep(0.05)
        return confirmed(self, *args)

    monkeypatch.setattr(SameImages, "confirmed", slowly_confirmed)
    token = get_token(gallery_server)
    picture = PICTURES["stripes-14"]
    variants = [encoded(picture, "JPEG", quality) for quality in range(60, 96, 5)]
    variants += [encoded(resized(picture, factor), "PNG") for factor in (0.5, 0.75, 1.5, 2.0)]

    def add(copy: bytes) -> str:
        body = ApiClient(gallery_server, token=token).call(
            "same_hq", "add", image=b64(copy), brief="copy"
        )
        return f"refused, naming {body['cont_sign']}" if "error_code" in body else "added"

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        outcomes = collections.Counter(pool.map(add, variants))
    items = live_items(gallery_server, "same_hq")
    assert len(items) == 1
    (sign,) = items
    assert outcomes == {"added": 1, f"refused, naming {sign}": len(variants) - 1}
