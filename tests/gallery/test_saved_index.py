"""The keypoint index is saved beside the store at a stop and mapped at the next start;
a saved file that is stale (a crash after later writes), torn or foreign never changes
what a search finds: it is brought in step with the store or rebuilt from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devkit.textured import crop_copy, textured_image
from syncd.gallery.server import GalleryServer

from .helpers import API_KEY, SECRET_KEY, ApiClient, b64

INDEX_FILE = "keypoints-same_hq.idx"


def _server(path: Path) -> GalleryServer:
    return GalleryServer(path, api_key=API_KEY, secret_key=SECRET_KEY)


def _add(client: ApiClient, seeds: range) -> dict[int, str]:
    return {
        seed: client.ok("same_hq", "add", image=b64(textured_image(seed)), brief=str(seed))[
            "cont_sign"
        ]
        for seed in seeds
    }


def _crop_hits(client: ApiClient, seed: int) -> list[str]:
    found = client.ok("same_hq", "search", image=b64(crop_copy(seed)))["result"]
    return [hit["cont_sign"] for hit in found]


def test_a_restart_maps_the_saved_index_and_crops_still_find_their_originals(
    tmp_path: Path,
) -> None:
    data = tmp_path / "gallery"
    with _server(data) as server:
        signs = _add(ApiClient(server), range(6))
    assert (data / INDEX_FILE).stat().st_size > 0
    with _server(data) as server:
        client = ApiClient(server)
        for seed, sign in signs.items():
            assert _crop_hits(client, seed)[:1] == [sign]
        signs |= _add(client, range(6, 8))
        client.ok("same_hq", "delete", cont_sign=signs.pop(0))
        assert _crop_hits(client, 0) == []
        for seed, sign in signs.items():
            assert _crop_hits(client, seed)[:1] == [sign]
    with _server(data) as server:
        client = ApiClient(server)
        assert _crop_hits(client, 0) == []
        for seed, sign in signs.items():
            assert _crop_hits(client, seed)[:1] == [sign]


def test_an_index_saved_before_later_adds_and_deletes_is_brought_in_step_with_the_store(
    tmp_path: Path,
) -> None:
    data = tmp_path / "gallery"
    with _server(data) as server:
        signs = _add(ApiClient(server), range(5))
    stale = tmp_path / "stale.idx"
    shutil.copyfile(data / INDEX_FILE, stale)
    with _server(data) as server:
        client = ApiClient(server)
        signs |= _add(client, range(5, 8))
        client.ok("same_hq", "delete", cont_sign=signs.pop(1))
    # what a crash leaves: the store has the later writes, the index file does not
    shutil.copyfile(stale, data / INDEX_FILE)
    with _server(data) as server:
        client = ApiClient(server)
        assert _crop_hits(client, 1) == []
        for seed, sign in signs.items():
            assert _crop_hits(client, seed)[:1] == [sign]


@pytest.mark.parametrize("damage", ["torn", "garbage", "empty", "crash mid-write"])
def test_a_damaged_index_file_is_rebuilt_from_the_store(tmp_path: Path, damage: str) -> None:
    data = tmp_path / "gallery"
    with _server(data) as server:
        signs = _add(ApiClient(server), range(4))
    path = data / INDEX_FILE
    whole = path.read_bytes()
    if damage == "torn":
        path.write_bytes(whole[: len(whole) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x93NUMPY not an index" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        # the temporary file of a save that never finished, beside the last good file
        (data / (INDEX_FILE + ".tmp")).write_bytes(whole[: len(whole) // 3])
    with _server(data) as server:
        client = ApiClient(server)
        for seed, sign in signs.items():
            assert _crop_hits(client, seed)[:1] == [sign]
    assert not (data / (INDEX_FILE + ".tmp")).exists()
    # saved whole again (slots may be numbered otherwise: same size, not same bytes)
    assert path.stat().st_size == len(whole)
