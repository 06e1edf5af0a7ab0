"""The official Python SDK (baidu-aip AipImageSearch) works against the local gallery
unchanged apart from its URLs, in token mode and in bce-auth-v1 mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aip import AipImageSearch

from syncd.api.baidu.galleries import GALLERIES, TOKEN_PATH
from syncd.gallery.server import GalleryServer

from .conftest import ImageHost
from .helpers import API_KEY, SECRET_KEY, live_items

MakeImage = Callable[..., bytes]

#: the SDK's method-name prefix of each gallery
_SDK_PREFIX = {"same_hq": "sameHq", "similar": "similar", "product": "product"}


def sdk_client(server: GalleryServer) -> Any:
    """An AipImageSearch whose 12 operation URLs and token URL point at ``server``."""
    client = AipImageSearch("10000001", API_KEY, SECRET_KEY)
    client._AipBase__accessTokenUrl = server.url + TOKEN_PATH
    for gallery, prefix in _SDK_PREFIX.items():
        for op in ("add", "search", "update", "delete"):
            attribute = f"_AipImageSearch__{prefix}{op.capitalize()}Url"
            assert hasattr(client, attribute), attribute
            setattr(client, attribute, server.url + GALLERIES[gallery].path(op))  # type: ignore[index]
    return client


@pytest.fixture(params=["token", "bce"])
def sdk_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GalleryServer]:
    """A gallery whose tokens put the SDK in token mode, or (no brain_all_scope) in bce mode."""
    scope = "public brain_all_scope" if request.param == "token" else "public wise_adapt"
    server = GalleryServer(
        tmp_path / "gallery", api_key=API_KEY, secret_key=SECRET_KEY, token_scope=scope
    )
    with server:
        yield server


def _expect_ok(answer: dict[str, Any]) -> dict[str, Any]:
    assert "error_code" not in answer, answer
    return answer


@pytest.mark.parametrize("gallery", ["same_hq", "similar", "product"])
def test_sdk_runs_every_operation(
    sdk_server: GalleryServer, make_image: MakeImage, gallery: str, request: pytest.FixtureRequest
) -> None:
    client = sdk_client(sdk_server)
    call = {
        name: getattr(client, _SDK_PREFIX[gallery] + name)
        for name in (
            "Add",
            "Search",
            "Update",
            "UpdateContSign",
            "DeleteByImage",
            "DeleteBySign",
        )
    }
    tags = {"class_id1": 3, "class_id2": 4} if gallery == "product" else {"tags": "3,4"}
    first = _expect_ok(call["Add"](make_image(1), "one", tags))["cont_sign"]
    second = _expect_ok(call["Add"](make_image(2), "two"))["cont_sign"]
    assert call["Add"](make_image(1), "again")["error_code"] == 216681

    found = _expect_ok(call["Search"](make_image(1), {"rn": 10}))
    assert found["result"][0]["cont_sign"] == first

    _expect_ok(call["Update"](make_image(1), {"brief": "one renamed"}))
    _expect_ok(call["UpdateContSign"](second, {"brief": "two renamed"}))
    items = live_items(sdk_server, gallery)
    assert {items[first]["brief"], items[second]["brief"]} == {"one renamed", "two renamed"}

    _expect_ok(call["DeleteByImage"](make_image(1)))
    _expect_ok(call["DeleteBySign"](second))
    assert live_items(sdk_server, gallery) == {}
    # the SDK took the mode the token's scope asks for
    assert client._isCloudUser is (request.node.callspec.params["sdk_server"] == "bce")


def test_sdk_url_variants_work(
    sdk_server: GalleryServer, image_host: ImageHost, make_image: MakeImage
) -> None:
    client = sdk_client(sdk_server)
    url = image_host.put("x.png", make_image(5, fmt="PNG"))
    sign = _expect_ok(client.similarAddUrl(url, "by url"))["cont_sign"]
    assert _expect_ok(client.similarSearchUrl(url))["result"][0]["cont_sign"] == sign
    _expect_ok(client.similarUpdateUrl(url, {"brief": "renamed"}))
    _expect_ok(client.similarDeleteByUrl(url))
    assert live_items(sdk_server, "similar") == {}


def test_sdk_with_a_wrong_secret_is_refused(
    sdk_server: GalleryServer, make_image: MakeImage
) -> None:
    client = sdk_client(sdk_server)
    client._secretKey = "wrong"
    answer = client.similarSearch(make_image(1))
    # no token is issued; the SDK then signs with bce-auth-v1, which fails too
    assert answer["error_code"] == 14
