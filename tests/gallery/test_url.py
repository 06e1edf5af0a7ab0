"""Images given by url: fetched over http(s), with the document's url errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.gallery.server import GalleryServer

from .conftest import ImageHost
from .helpers import ApiClient, live_items

MakeImage = Callable[..., bytes]


@pytest.mark.parametrize("gallery", ["same_hq", "similar", "product"])
def test_every_operation_takes_an_image_by_url(
    gallery_server: GalleryServer,
    token_client: ApiClient,
    image_host: ImageHost,
    make_image: MakeImage,
    gallery: str,
) -> None:
    url = image_host.put("a.jpg", make_image(1))
    sign = token_client.ok(gallery, "add", url=url, brief="by url")["cont_sign"]
    assert token_client.error(gallery, "add", url=url, brief="again") == 216681
    assert token_client.ok(gallery, "search", url=url)["result"][0]["cont_sign"] == sign
    token_client.ok(gallery, "update", url=url, brief="renamed by url")
    assert live_items(gallery_server, gallery)[sign]["brief"] == "renamed by url"
    token_client.ok(gallery, "delete", url=url)
    assert live_items(gallery_server, gallery) == {}


def test_url_answering_404_answers_282113(token_client: ApiClient, image_host: ImageHost) -> None:
    assert token_client.error("similar", "search", url=f"{image_host.url}/missing.jpg") == 282113


def test_unreachable_url_answers_282113(token_client: ApiClient) -> None:
    assert token_client.error("similar", "search", url="http://127.0.0.1:9/x.jpg") == 282113


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.jpg", "file:///etc/hosts", "not a url"])
def test_url_that_is_not_http_answers_282113(token_client: ApiClient, url: str) -> None:
    assert token_client.error("similar", "search", url=url) == 282113


def test_url_of_something_not_an_image_answers_216201(
    token_client: ApiClient, image_host: ImageHost
) -> None:
    url = image_host.put("notes.txt", b"hello")
    assert token_client.error("similar", "search", url=url) == 216201


@pytest.fixture
def impatient_server(tmp_path: Path) -> Iterator[GalleryServer]:
    """A gallery that gives a url download 0.3 s."""
    with GalleryServer(tmp_path / "gallery", url_timeout=0.3) as server:
        yield server


def test_url_download_over_the_timeout_answers_282112(
    impatient_server: GalleryServer, image_host: ImageHost, make_image: MakeImage
) -> None:
    image_host.put("a.jpg", make_image(2))
    client = ApiClient(impatient_server)
    assert client.error("similar", "search", url=f"{image_host.url}/slow/a.jpg") == 282112
    assert client.ok("similar", "search", url=f"{image_host.url}/a.jpg")["result"] == []


def test_url_image_over_the_size_limit_answers_216202(
    token_client: ApiClient, image_host: ImageHost
) -> None:
    url = image_host.put("big.bmp", b"BM" + bytes(4 * 1024 * 1024))
    assert token_client.error("similar", "search", url=url) == 216202
