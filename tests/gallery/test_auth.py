"""The token endpoint and both ways of authenticating API calls."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from syncd.api.baidu.galleries import GALLERIES, TOKEN_PATH
from syncd.gallery.server import GalleryServer

from .helpers import (
    API_KEY,
    SECRET_KEY,
    ApiClient,
    b64,
    bce_authorization,
    bce_timestamp,
    get_token,
)

SEARCH = GALLERIES["same_hq"].path("search")


def _token_answer(server: GalleryServer, method: str, **params: str) -> requests.Response:
    if method == "GET":
        return requests.get(server.url + TOKEN_PATH, params=params, timeout=10)
    return requests.post(server.url + TOKEN_PATH, data=params, timeout=10)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_token_endpoint_issues_a_baidu_style_token(
    gallery_server: GalleryServer, method: str
) -> None:
    answer = _token_answer(
        gallery_server,
        method,
        grant_type="client_credentials",
        client_id=API_KEY,
        client_secret=SECRET_KEY,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["access_token"].startswith("24.")
    assert body["access_token"].split(".")[2] == str(30 * 86400)
    assert body["expires_in"] == 30 * 86400
    assert "brain_all_scope" in body["scope"].split(" ")
    assert {"refresh_token", "session_key", "session_secret"} <= set(body)


def test_token_endpoint_refuses_an_unknown_client_id(gallery_server: GalleryServer) -> None:
    answer = _token_answer(
        gallery_server,
        "GET",
        grant_type="client_credentials",
        client_id="someone-else",
        client_secret=SECRET_KEY,
    )
    assert answer.status_code == 401
    assert answer.json() == {"error": "invalid_client", "error_description": "unknown client id"}


def test_token_endpoint_refuses_a_wrong_secret(gallery_server: GalleryServer) -> None:
    answer = _token_answer(
        gallery_server,
        "POST",
        grant_type="client_credentials",
        client_id=API_KEY,
        client_secret="wrong",
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_token_endpoint_refuses_other_grant_types(gallery_server: GalleryServer) -> None:
    answer = _token_answer(
        gallery_server, "GET", grant_type="password", client_id=API_KEY, client_secret=SECRET_KEY
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


def test_server_without_keys_issues_tokens_to_anyone(tmp_path: Path) -> None:
    with GalleryServer(tmp_path / "open") as server:
        token = get_token(server, "anyone", "anything")
        answer = requests.post(
            server.url + SEARCH, params={"access_token": token}, data={}, timeout=10
        )
        assert answer.json()["error_code"] == 216101  # past authentication


def test_server_without_keys_accepts_bce_signatures_of_any_key(
    tmp_path: Path, make_image: Callable[..., bytes]
) -> None:
    with GalleryServer(tmp_path / "open") as server:
        client = ApiClient(server, auth="bce", ak="any-ak", sk="any-sk")
        assert client.ok("same_hq", "search", image=b64(make_image(1)))["result"] == []


def test_unknown_access_token_answers_110(gallery_server: GalleryServer) -> None:
    client = ApiClient(gallery_server, token="24.unknown.2592000.1-1")
    assert client.error("same_hq", "search") == 110


def test_call_without_credentials_answers_110(gallery_server: GalleryServer) -> None:
    answer = requests.post(gallery_server.url + SEARCH, data={"image": "x"}, timeout=10)
    assert answer.json()["error_code"] == 110


def test_expired_access_token_answers_111(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: Callable[..., bytes]
) -> None:
    token_client.ok("same_hq", "search", image=b64(make_image(1)))
    gallery_server.faults.token_lifetime = 0.0
    assert token_client.error("same_hq", "search", image=b64(make_image(1))) == 111


def test_a_fresh_token_works_after_expiry(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: Callable[..., bytes]
) -> None:
    token_client.ok("same_hq", "search", image=b64(make_image(1)))
    gallery_server.faults.token_lifetime = 0.0
    assert token_client.error("same_hq", "search", image=b64(make_image(1))) == 111
    gallery_server.faults.token_lifetime = 3600.0
    token_client.token = get_token(gallery_server)
    token_client.ok("same_hq", "search", image=b64(make_image(1)))


@pytest.mark.parametrize("host_with_port", [True, False])
def test_bce_signature_is_accepted_with_or_without_the_port_in_host(
    gallery_server: GalleryServer, host_with_port: bool, make_image: Callable[..., bytes]
) -> None:
    client = ApiClient(gallery_server, auth="bce", host_with_port=host_with_port)
    assert client.ok("same_hq", "search", image=b64(make_image(1)))["result"] == []


def _signed_post(
    server: GalleryServer,
    authorization: str,
    headers: dict[str, str],
    query: dict[str, str] | None = None,
) -> int:
    answer = requests.post(
        server.url + SEARCH,
        params=query or {},
        data={"image": "x"},
        headers={**headers, "authorization": authorization},
        timeout=10,
    )
    code = answer.json().get("error_code")
    assert isinstance(code, int)
    return code


def _host(server: GalleryServer) -> str:
    return server.url.removeprefix("http://")


def _sign(
    server: GalleryServer,
    ak: str = API_KEY,
    sk: str = SECRET_KEY,
    age: float = 0.0,
    query: dict[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """(authorization, signed headers) of a search call signed ``age`` seconds ago."""
    when = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=age)
    headers = {"host": _host(server), "x-bce-date": bce_timestamp(when)}
    auth = bce_authorization(ak, sk, "POST", SEARCH, query or {}, headers, bce_timestamp(when))
    return auth, headers


def test_bce_signature_covers_query_parameters(gallery_server: GalleryServer) -> None:
    query = {"aipSdk": "python", "b": "two words", "a": "x~y"}
    auth, headers = _sign(gallery_server, query=query)
    # past authentication: the (bad) image is what is refused
    assert _signed_post(gallery_server, auth, headers, query) == 216203
    assert _signed_post(gallery_server, auth, headers, {**query, "a": "changed"}) == 14


def test_bce_signature_made_with_a_wrong_secret_answers_14(gallery_server: GalleryServer) -> None:
    auth, headers = _sign(gallery_server, sk="wrong")
    assert _signed_post(gallery_server, auth, headers) == 14


def test_bce_signature_of_another_access_key_answers_14(gallery_server: GalleryServer) -> None:
    auth, headers = _sign(gallery_server, ak="other")
    assert _signed_post(gallery_server, auth, headers) == 14


def test_stale_bce_signature_answers_14(gallery_server: GalleryServer) -> None:
    auth, headers = _sign(gallery_server, age=1900)  # signed for 1800 s
    assert _signed_post(gallery_server, auth, headers) == 14


def test_bce_signature_within_its_expiration_is_accepted(gallery_server: GalleryServer) -> None:
    auth, headers = _sign(gallery_server, age=1700)
    assert _signed_post(gallery_server, auth, headers) == 216203


def test_bce_signature_from_the_future_answers_14(gallery_server: GalleryServer) -> None:
    auth, headers = _sign(gallery_server, age=-3600)
    assert _signed_post(gallery_server, auth, headers) == 14


def test_signed_header_changed_in_transit_answers_14(gallery_server: GalleryServer) -> None:
    auth, headers = _sign(gallery_server)
    tampered = {**headers, "x-bce-date": "2001-01-01T00:00:00Z"}
    assert _signed_post(gallery_server, auth, tampered) == 14


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "bce-auth-v1",
        "bce-auth-v2/test-ak/2024-01-01T00:00:00Z/1800/host/abc",
        "bce-auth-v1/test-ak/not-a-time/1800/host/abc",
        "bce-auth-v1/test-ak/2024-01-01T00:00:00Z/soon/host/abc",
        "bce-auth-v1/test-ak/{now}/1800/host/short",
        "Bearer abc",
    ],
)
def test_malformed_authorization_answers_14(
    gallery_server: GalleryServer, authorization: str
) -> None:
    headers = {"host": _host(gallery_server)}
    assert _signed_post(gallery_server, authorization.format(now=bce_timestamp()), headers) == 14


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_api_path_with_another_method_answers_3(gallery_server: GalleryServer, method: str) -> None:
    token = get_token(gallery_server)
    answer = requests.request(
        method, gallery_server.url + SEARCH, params={"access_token": token}, timeout=10
    )
    assert answer.status_code == 200
    assert answer.json()["error_code"] == 3


@pytest.mark.parametrize(
    "path",
    ["/rest/2.0/realtime_search/same_hq/list", "/rest/2.0/nothing", "/", "/oauth/2.0/other"],
)
def test_unknown_path_answers_3(gallery_server: GalleryServer, path: str) -> None:
    answer = requests.post(gallery_server.url + path, data={}, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["error_code"] == 3


def test_log_lines_never_hold_tokens_secrets_or_signatures(
    gallery_server: GalleryServer,
    caplog: pytest.LogCaptureFixture,
    make_image: Callable[..., bytes],
) -> None:
    caplog.set_level(logging.DEBUG, logger="syncd.gallery")
    token_client = ApiClient(gallery_server)
    token_client.ok("same_hq", "search", image=b64(make_image(1)))
    bce_client = ApiClient(gallery_server, auth="bce")
    bce_client.ok("same_hq", "search", image=b64(make_image(1)))
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "access_token=***" in text
    assert SEARCH in text
    assert token_client.token not in text
    assert SECRET_KEY not in text
    assert "bce-auth-v1" not in text
