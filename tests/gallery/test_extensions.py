"""The /_syncd/ extensions (health, calls, items) and the credentials they ask for."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from syncd.gallery.server import GalleryServer

from .helpers import (
    API_KEY,
    SECRET_KEY,
    ApiClient,
    b64,
    bce_authorization,
    bce_timestamp,
    get_token,
    live_items,
    tag_params,
)

MakeImage = Callable[..., bytes]

#: a brief naming a file, as syncd stores them
BRIEF = '{"lib":"photos","path":"private/2024/holiday.jpg"}'
#: the extensions that answer nothing without credentials when keys are set
GUARDED = [("calls", {}), ("items", {"gallery": "similar"}), ("items", {"gallery": "nope"})]


def _get(
    server: GalleryServer, what: str, params: dict[str, str] | None = None, **headers: str
) -> requests.Response:
    return requests.get(
        f"{server.url}/_syncd/{what}", params=params or {}, headers=headers, timeout=10
    )


def _with_token(server: GalleryServer, what: str, **params: str) -> requests.Response:
    return _get(server, what, {**params, "access_token": get_token(server)})


def _signed_get(
    server: GalleryServer, what: str, params: dict[str, str], sk: str = SECRET_KEY
) -> requests.Response:
    path = f"/_syncd/{what}"
    signed = {"host": urlsplit(server.url).netloc, "x-bce-date": bce_timestamp()}
    authorization = bce_authorization(
        API_KEY, sk, "GET", path, params, signed, signed["x-bce-date"]
    )
    return _get(server, what, params, **signed, authorization=authorization)


def _refusal(answer: requests.Response) -> int:
    """The error code of a refused extension call, checking its HTTP status and shape."""
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"log_id", "error_code", "error_msg"}, body
    assert isinstance(body["error_msg"], str) and body["error_msg"]
    code = body["error_code"]
    assert isinstance(code, int)
    return code


def test_health_reports_live_items_per_gallery_to_a_caller_with_credentials(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: MakeImage
) -> None:
    token_client.ok("product", "add", image=b64(make_image(1)))
    body = _with_token(gallery_server, "health").json()
    assert body == {"status": "ok", "items": {"same_hq": 0, "similar": 0, "product": 1}}


def test_health_stays_open_for_probes_and_says_only_ok(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: MakeImage
) -> None:
    token_client.ok("similar", "add", image=b64(make_image(1)), brief=BRIEF)
    for answer in (
        _get(gallery_server, "health"),
        _get(gallery_server, "health", {"access_token": "24.unknown.2592000.1-1"}),
    ):
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok"}


def test_calls_lists_every_gallery_and_operation(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: MakeImage
) -> None:
    token_client.ok("similar", "search", image=b64(make_image(1)))
    body = _with_token(gallery_server, "calls").json()
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
    answer = _with_token(gallery_server, "items", gallery="nope")
    assert answer.status_code == 400
    assert answer.json()["error_code"] == 216100


@pytest.mark.parametrize(("what", "params"), GUARDED)
def test_extensions_without_credentials_answer_401_and_110_naming_no_path(
    gallery_server: GalleryServer,
    token_client: ApiClient,
    make_image: MakeImage,
    what: str,
    params: dict[str, str],
) -> None:
    token_client.ok("similar", "add", image=b64(make_image(1)), brief=BRIEF)
    answer = _get(gallery_server, what, params)
    assert _refusal(answer) == 110
    assert "holiday" not in answer.text and "similar" not in answer.text


@pytest.mark.parametrize(("what", "params"), GUARDED)
def test_extensions_with_an_unknown_token_answer_110(
    gallery_server: GalleryServer, what: str, params: dict[str, str]
) -> None:
    answer = _get(gallery_server, what, {**params, "access_token": "24.unknown.2592000.1-1"})
    assert _refusal(answer) == 110


def test_extensions_with_an_expired_token_answer_111(gallery_server: GalleryServer) -> None:
    token = get_token(gallery_server)
    assert _get(gallery_server, "calls", {"access_token": token}).status_code == 200
    gallery_server.faults.token_lifetime = 0.0
    assert _refusal(_get(gallery_server, "calls", {"access_token": token})) == 111


def test_extensions_accept_a_bce_signature(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: MakeImage
) -> None:
    token_client.ok("similar", "add", image=b64(make_image(1)), brief=BRIEF)
    answer = _signed_get(gallery_server, "items", {"gallery": "similar"})
    assert answer.status_code == 200, answer.text
    assert [item["brief"] for item in answer.json()["items"]] == [BRIEF]


def test_extensions_refuse_a_bce_signature_made_with_a_wrong_secret_with_14(
    gallery_server: GalleryServer,
) -> None:
    answer = _signed_get(gallery_server, "items", {"gallery": "similar"}, sk="wrong")
    assert _refusal(answer) == 14


def test_extensions_of_a_server_without_keys_need_no_credentials(
    tmp_path: Path, make_image: MakeImage
) -> None:
    with GalleryServer(tmp_path / "open") as server:
        ApiClient(server, ak="any", sk="any").ok("similar", "add", image=b64(make_image(1)))
        assert _get(server, "health").json()["items"]["similar"] == 1
        assert _get(server, "calls").json()["total"] == 1
        items = _get(server, "items", {"gallery": "similar"})
        assert items.status_code == 200 and len(items.json()["items"]) == 1


def test_the_servers_own_access_token_opens_its_extensions(gallery_server: GalleryServer) -> None:
    token = gallery_server.access_token()
    assert gallery_server.access_token() == token  # reused while valid
    assert _get(gallery_server, "calls", {"access_token": token}).status_code == 200


def test_extension_log_lines_never_hold_tokens_or_signatures(
    gallery_server: GalleryServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="syncd.gallery")
    token = get_token(gallery_server)
    assert _get(gallery_server, "calls", {"access_token": token}).status_code == 200
    assert _signed_get(gallery_server, "calls", {}).status_code == 200
    assert _get(gallery_server, "calls", {"access_token": "24.guess"}).status_code == 401
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "/_syncd/calls?access_token=***" in text
    assert token not in text and "24.guess" not in text
    assert SECRET_KEY not in text and "bce-auth-v1" not in text
