"""Clients that misbehave on a shared network: oversized bodies, idle and stalled sockets.

Every answer stays in the API's JSON shape, and the sync's own calls keep completing.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from syncd.api.baidu.client import ImageSearchClient
from syncd.api.baidu.galleries import GALLERIES, TOKEN_PATH
from syncd.gallery.server import MAX_BODY_BYTES, GalleryServer

from .helpers import API_KEY, SECRET_KEY, ApiClient, b64

MakeImage = Callable[..., bytes]

SEARCH = GALLERIES["similar"].path("search")
#: a request that stops in its head, and one that stops in its body
STALLED_HEAD = b"POST " + SEARCH.encode() + b" HTTP/1.1\r\nHost: gallery\r\nContent-Le"
STALLED_BODY = (
    b"POST " + SEARCH.encode() + b" HTTP/1.1\r\nHost: gallery\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nimage=AAAA"
)


def _assert_image_size_error(answer: requests.Response) -> None:
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"log_id", "error_code", "error_msg"}, body
    assert body["error_code"] == 216202 and body["error_msg"] == "image size error"


def _still_serves(client: ApiClient, make_image: MakeImage) -> None:
    assert client.ok("similar", "search", image=b64(make_image(7)))["result"] == []


@pytest.mark.parametrize("extra", [100, 1024 * 1024 - 1])
def test_body_just_over_16_mib_answers_413_with_216202(
    token_client: ApiClient, make_image: MakeImage, extra: int
) -> None:
    answer = token_client.post(SEARCH, {"image": "A" * (MAX_BODY_BYTES + extra)})
    _assert_image_size_error(answer)
    _still_serves(token_client, make_image)


def test_body_far_over_the_limit_answers_the_same_without_being_read(
    token_client: ApiClient, make_image: MakeImage
) -> None:
    answer = token_client.post(SEARCH, {"image": "A" * (3 * MAX_BODY_BYTES)})
    _assert_image_size_error(answer)
    _still_serves(token_client, make_image)


def test_chunked_body_over_the_limit_answers_the_same(
    gallery_server: GalleryServer, token_client: ApiClient, make_image: MakeImage
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"image="
        for _ in range(24):
            yield b"A" * (1024 * 1024)

    answer = requests.post(
        gallery_server.url + SEARCH,
        params={"access_token": token_client.server.access_token()},
        data=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    _assert_image_size_error(answer)
    _still_serves(token_client, make_image)


@pytest.mark.parametrize("path", [TOKEN_PATH, "/_syncd/calls", "/nowhere"])
def test_oversized_body_on_any_path_answers_216202(
    gallery_server: GalleryServer, path: str
) -> None:
    answer = requests.post(gallery_server.url + path, data=b"A" * (MAX_BODY_BYTES + 1), timeout=60)
    _assert_image_size_error(answer)


def test_request_head_over_waitress_limit_answers_json(gallery_server: GalleryServer) -> None:
    answer = requests.get(
        gallery_server.url + "/_syncd/health", params={"pad": "A" * 300_000}, timeout=30
    )
    assert answer.status_code == 431
    assert answer.json()["error_code"] == 216103


def _open_sockets(url: str, count: int, stack: ExitStack) -> list[socket.socket]:
    """``count`` connections that never finish a request: a third send nothing, a third
    stop in the request head, a third in the body."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    opened = []
    for n in range(count):
        sock = stack.enter_context(socket.create_connection((parts.hostname, parts.port), 10))
        if n % 3:
            sock.sendall(STALLED_HEAD if n % 3 == 1 else STALLED_BODY)
        opened.append(sock)
    return opened


def _sync_sequence(server: GalleryServer, make_image: MakeImage, timeout: float) -> None:
    """What a sync does: add images, find them again, delete one; each call must complete."""
    images = [make_image(seed) for seed in (11, 12, 13)]
    with ImageSearchClient(
        server.url, api_key=API_KEY, secret_key=SECRET_KEY, concurrency=2, timeout=timeout
    ) as client:
        signs = [client.add("same_hq", image=image, brief=f"b{n}").cont_sign
                 for n, image in enumerate(images)]  # fmt: skip
        for image, sign in zip(images, signs, strict=True):
            assert [hit.cont_sign for hit in client.search("same_hq", image=image).hits] == [sign]
        client.delete("same_hq", cont_signs=signs[:1])


def test_sync_calls_complete_while_150_idle_and_stalled_sockets_are_open(
    gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    with ExitStack() as stack:
        stalled = _open_sockets(gallery_server.url, 150, stack)
        _sync_sequence(gallery_server, make_image, timeout=10)
        # the stalled clients were only kept waiting: nothing was answered to them
        stalled[1].settimeout(0.2)
        with pytest.raises(TimeoutError):
            stalled[1].recv(1)


def test_silent_sockets_over_the_connection_limit_are_closed_after_the_channel_timeout(
    tmp_path: Path, make_image: MakeImage
) -> None:
    server = GalleryServer(
        tmp_path / "gallery",
        api_key=API_KEY,
        secret_key=SECRET_KEY,
        connection_limit=20,
        channel_timeout=1,
    )
    with server, ExitStack() as stack:
        stalled = _open_sockets(server.url, 30, stack)  # the sync's calls queue behind them
        _sync_sequence(server, make_image, timeout=30)
        for sock in (stalled[0], stalled[1], stalled[2]):
            sock.settimeout(10)
            assert sock.recv(1) == b""  # closed by the server, without an answer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_gallery_serve_takes_its_connection_limit_and_channel_timeout(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "syncd.cli", "gallery", "serve", "--port", str(port),
               "--data", str(tmp_path / "data"), "--api-key", API_KEY, "--secret-key",
               SECRET_KEY, "--connection-limit", "10", "--channel-timeout", "1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the server exited early"
            try:
                requests.get(url + "/_syncd/health", timeout=1).raise_for_status()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the server did not come up within 30 s"
                time.sleep(0.05)
        with ExitStack() as stack:
            stalled = _open_sockets(url, 15, stack)  # over the limit: health waits its turn
            assert requests.get(url + "/_syncd/health", timeout=20).json() == {"status": "ok"}
            stalled[0].settimeout(10)
            assert stalled[0].recv(1) == b""  # closed after about a second, not 30
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr.decode(errors="replace")
