"""Search over HTTP: ``/api/search`` says what ``syncd search --json`` says, leaves out
hits below ``min_score``, and answers a hostile upload with a clear 4xx."""

from __future__ import annotations

from typing import Any

import requests

from devkit.imagegen import make_image, rescale

from .clients import BEARER
from .conftest import World


def test_api_search_finds_the_file_and_names_its_path(world: World) -> None:
    image = (world.site.root / "pics/p01.jpg").read_bytes()
    answer = requests.post(
        f"{world.url}/api/search",
        headers=BEARER,
        files={"image": ("query.jpg", image, "image/jpeg")},
        data={"top": "5"},
    )
    assert answer.status_code == 200
    hits = answer.json()
    assert set(hits[0]) == {"score", "cont_sign", "brief", "paths"}
    assert hits[0]["paths"] == [str(world.site.root / "pics/p01.jpg")]


def test_api_search_leaves_out_hits_below_min_score(world: World) -> None:
    image = rescale((world.site.root / "pics/p01.jpg").read_bytes(), 3.0)

    def hits(**form: str) -> Any:
        answer = requests.post(
            f"{world.url}/api/search",
            headers=BEARER,
            files={"image": ("query.jpg", image, "image/jpeg")},
            data=form,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    (best, *_) = hits()
    assert best["paths"] == [str(world.site.root / "pics/p01.jpg")] and best["score"] < 1.0
    assert hits(min_score=f"{best['score'] - 0.01:.4f}")[0]["cont_sign"] == best["cont_sign"]
    assert hits(min_score=f"{min(best['score'] + 0.001, 1.0):.4f}") == []
    for wrong in ("abc", "-0.1", "1.5", "nan"):
        answer = requests.post(
            f"{world.url}/api/search",
            headers=BEARER,
            files={"image": ("query.jpg", image)},
            data={"min_score": wrong},
        )
        assert answer.status_code == 400, wrong
        assert answer.json() == {"error": "min_score: expected a number 0..1"}


def test_hostile_uploads_get_a_clear_4xx(world: World) -> None:
    url = f"{world.url}/api/search"
    huge = requests.post(
        url, headers=BEARER, files={"image": ("big.jpg", b"\xff" * (17 * 1024 * 1024))}
    )
    assert huge.status_code == 413
    garbled = requests.post(
        url,
        headers={**BEARER, "Content-Type": "multipart/form-data; boundary=xyz"},
        data=b"--nope\r\nthis is not multipart\r\n",
    )
    assert garbled.status_code == 400
    assert "error" in garbled.json()
    assert requests.post(url, headers=BEARER).status_code == 400
    not_image = requests.post(url, headers=BEARER, files={"image": ("a.jpg", b"plain text")})
    assert not_image.status_code == 400
    assert "Traceback" not in not_image.text
    for top in ("abc", "0", "-3", "99999"):
        answer = requests.post(
            url, headers=BEARER, files={"image": ("q.jpg", make_image(1))}, data={"top": top}
        )
        assert answer.status_code == 400, top
    unknown = requests.post(
        url, headers=BEARER, files={"image": ("q.jpg", make_image(1))}, data={"library": "x"}
    )
    assert unknown.status_code == 400


def test_a_search_error_says_what_is_wrong_once(world: World) -> None:
    answer = requests.post(
        f"{world.url}/search/hits",
        headers=BEARER,
        files={"image": ("a.jpg", b"plain text, no picture")},
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error.count("not an image") == 1, error
