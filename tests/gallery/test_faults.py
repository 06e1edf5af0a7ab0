"""Fault injection: transient failures, QPS and daily limits, latency, 216017."""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from syncd.api.baidu.galleries import GALLERIES
from syncd.gallery.server import FaultConfig, GalleryServer

from .helpers import ApiClient, b64, get_token, live_items

MakeImage = Callable[..., bytes]
SEARCH = GALLERIES["similar"].path("search")


def _outcome(client: ApiClient, image: str) -> str:
    """What one search call got: "ok", "error N", "HTTP N" or "dropped"."""
    try:
        answer = client.post(SEARCH, {"image": image}, timeout=10)
    except requests.ConnectionError:
        return "dropped"
    if answer.status_code != 200:
        return f"HTTP {answer.status_code}"
    body = answer.json()
    return f"error {body['error_code']}" if "error_code" in body else "ok"


def test_transient_failures_mix_error_codes_http_502_and_dropped_connections(
    gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    client = ApiClient(gallery_server)
    image = b64(make_image(1))
    get_token(gallery_server)
    gallery_server.faults.transient_rate = 1.0
    outcomes = collections.Counter(_outcome(client, image) for _ in range(12))
    assert set(outcomes) == {
        "error 1",
        "error 2",
        "error 282000",
        "error 216630",
        "HTTP 502",
        "dropped",
    }
    gallery_server.faults.transient_rate = 0.0
    assert _outcome(client, image) == "ok"


def test_transient_rate_fails_about_that_fraction_of_calls(
    gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    client = ApiClient(gallery_server)
    image = b64(make_image(1))
    gallery_server.faults.transient_rate = 0.5
    outcomes = [_outcome(client, image) for _ in range(200)]
    failures = sum(outcome != "ok" for outcome in outcomes)
    assert 60 <= failures <= 140


def test_a_dropped_connection_closes_the_socket_without_an_answer(
    gallery_server: GalleryServer,
) -> None:
    client = ApiClient(gallery_server)
    client.token = get_token(gallery_server)
    gallery_server.faults.transient_rate = 1.0
    outcomes = []
    for _ in range(6):
        try:
            answer = client.post(SEARCH, {"image": "x"})
            outcomes.append(answer.status_code)
        except requests.ConnectionError as exc:
            outcomes.append(0)
            assert "without response" in str(exc) or "aborted" in str(exc)
    assert 0 in outcomes


def test_lost_answer_adds_the_item_and_drops_the_connection(
    gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    client = ApiClient(gallery_server)
    client.token = get_token(gallery_server)
    gallery_server.faults.lost_answer_rate = 1.0
    with pytest.raises(requests.ConnectionError):
        client.post(GALLERIES["similar"].path("add"), {"image": b64(make_image(3)), "brief": "b"})
    # the add happened: only its answer was lost
    assert [item["brief"] for item in live_items(gallery_server, "similar").values()] == ["b"]
    # other operations answer as usual
    assert _outcome(client, b64(make_image(3))) == "ok"


def test_qps_limit_answers_18_above_it(
    gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    client = ApiClient(gallery_server)
    client.token = get_token(gallery_server)
    image = b64(make_image(1))
    gallery_server.faults.qps_limit = 2.0
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = collections.Counter(
            pool.map(
                lambda _: _outcome(ApiClient(gallery_server, token=client.token), image), range(24)
            )
        )
    assert outcomes["ok"] >= 2
    assert outcomes["error 18"] >= 1
    assert set(outcomes) <= {"ok", "error 18"}
    gallery_server.faults.qps_limit = 0.0
    assert _outcome(client, image) == "ok"


def test_daily_limit_answers_17_after_that_many_calls(
    gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    client = ApiClient(gallery_server)
    image = b64(make_image(1))
    gallery_server.faults.daily_limit = 3
    outcomes = [_outcome(client, image) for _ in range(5)]
    assert outcomes == ["ok", "ok", "ok", "error 17", "error 17"]
    gallery_server.faults.daily_limit = 0
    assert _outcome(client, image) == "ok"


def test_daily_limit_counts_from_when_it_is_set(
    gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    client = ApiClient(gallery_server)
    image = b64(make_image(1))
    for _ in range(3):
        assert _outcome(client, image) == "ok"
    gallery_server.faults.daily_limit = 2
    assert [_outcome(client, image) for _ in range(3)] == ["ok", "ok", "error 17"]
    # a new limit is a new quota
    gallery_server.faults.daily_limit = 1
    assert [_outcome(client, image) for _ in range(2)] == ["ok", "error 17"]


def test_latency_delays_every_answer(gallery_server: GalleryServer, make_image: MakeImage) -> None:
    client = ApiClient(gallery_server)
    client.token = get_token(gallery_server)
    gallery_server.faults.latency = 2.0
    with pytest.raises(requests.ReadTimeout):
        client.post(SEARCH, {"image": b64(make_image(1))}, timeout=0.3)
    gallery_server.faults.latency = 0.0
    assert client.post(SEARCH, {"image": b64(make_image(1))}).json()["result"] == []


def test_not_initialized_gallery_answers_216017(
    gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    client = ApiClient(gallery_server)
    gallery_server.faults.not_initialized = frozenset({"product"})
    image = b64(make_image(1))
    for op in ("add", "search", "update", "delete"):
        assert client.error("product", op, image=image, brief="b") == 216017
    assert client.ok("similar", "search", image=image)["result"] == []


def test_faults_given_at_construction_apply_from_the_start(
    tmp_path: Path, make_image: MakeImage
) -> None:
    faults = FaultConfig(not_initialized=frozenset({"same_hq"}), daily_limit=1)
    with GalleryServer(tmp_path / "gallery", faults=faults) as server:
        client = ApiClient(server)
        assert client.error("same_hq", "search", image=b64(make_image(1))) == 216017
        assert client.error("similar", "search", image=b64(make_image(1))) == 17
        server.faults = FaultConfig()
        assert client.ok("similar", "search", image=b64(make_image(1)))["result"] == []
