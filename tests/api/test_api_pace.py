"""The caller's gate at the wire (``ImageSearchClient.pace``): every request waits for it once
its body is encoded and signed, right before it leaves; what the gate raises reaches the
caller and nothing is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from syncd.api.baidu import client as client_module
from syncd.api.baidu.client import ImageSearchClient
from syncd.api.baidu.params import CallParams
from syncd.config import AuthMode
from syncd.gallery.server import GalleryServer

AK, SK = "test-ak", "test-sk"
MakeImage = Callable[..., bytes]


class Halt(Exception):
    """What a gate raises to keep a call home (the engine's Stopping, a spent budget)."""


@pytest.fixture(params=["token", "bce"])
def client(
    request: pytest.FixtureRequest, gallery_server: GalleryServer
) -> Iterator[ImageSearchClient]:
    auth: AuthMode = request.param
    with ImageSearchClient(
        gallery_server.url, api_key=AK, secret_key=SK, auth=auth, timeout=10
    ) as made:
        yield made


def test_every_request_meets_the_pace_after_it_is_encoded_and_signed(
    client: ImageSearchClient,
    gallery_server: GalleryServer,
    make_image: MakeImage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client.check()  # the token (token mode) is not a call the caller paces
    gallery_server.reset_counts()
    events: list[str] = []
    encode, sign = client_module.encode_form, client_module.bce_authorization

    def encoding(params: CallParams) -> bytes:
        events.append("encoded")
        return encode(params)

    def signing(**kwargs: Any) -> str:
        events.append("signed")
        return sign(**kwargs)

    monkeypatch.setattr(client_module, "encode_form", encoding)
    monkeypatch.setattr(client_module, "bce_authorization", signing)
    client.pace = lambda: events.append(f"paced after {calls(gallery_server)} calls")

    added = client.add("similar", image=make_image(90), brief="b")
    client.update("similar", cont_sign=added.cont_sign, brief="c")

    built = ["encoded", "signed"] if client.auth == "bce" else ["encoded"]
    assert events == [*built, "paced after 0 calls", *built, "paced after 1 calls"]
    assert calls(gallery_server) == 2


def calls(server: GalleryServer) -> int:
    """API calls the gallery received (the token's left out)."""
    return sum(server.call_counts().values())


def test_what_the_pace_raises_reaches_the_caller_and_nothing_is_sent(
    client: ImageSearchClient, gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    client.check()
    gallery_server.reset_counts()
    counted = client.call_counts()

    def halt() -> None:
        raise Halt

    client.pace = halt
    with pytest.raises(Halt):
        client.add("similar", image=make_image(91))
    with pytest.raises(Halt):
        client.delete("similar", cont_signs=["1,1"])
    assert gallery_server.call_counts() == {}
    assert client.call_counts() == counted
