"""The console's limits over real HTTP on loopback: a body over the upload limit is refused
in the console's own words and headers (a page for pages, JSON for the API), and many idle
connections do not keep it from answering."""

from __future__ import annotations

import json
import socket

import requests

from syncd.console.app import MAX_UPLOAD_BYTES

from .conftest import PASSWORD, World
from .test_console_hosts import Answer, exchange

BEARER = f"Authorization: Bearer {PASSWORD}"
#: idle connections opened at once: more than waitress's default limit (100)
IDLE_CONNECTIONS = 120


def assert_console_headers(answer: Answer) -> None:
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["cache-control"] == "no-store"
    assert "waitress" not in answer.body


def test_a_body_over_the_limit_gets_the_apis_json_413(world: World) -> None:
    # only the headers are sent: the refusal comes before the body is read
    answer = exchange(
        world,
        f"127.0.0.1:{world.server.port}",
        f"POST /api/search HTTP/1.1\r\n{BEARER}\r\nContent-Type: multipart/form-data; "
        f"boundary=xyz\r\nContent-Length: {MAX_UPLOAD_BYTES + 1}",
    )
    assert answer.status == 413
    assert answer.headers["content-type"] == "application/json"
    assert json.loads(answer.body) == {"error": "the request body is over 16 MiB"}
    assert_console_headers(answer)


def test_a_body_over_the_limit_gets_the_consoles_413_page(open_world: World) -> None:
    answer = exchange(
        open_world,
        f"127.0.0.1:{open_world.server.port}",
        "POST /held/release HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {10 * MAX_UPLOAD_BYTES}",
    )
    assert answer.status == 413
    assert answer.headers["content-type"].startswith("text/html")
    assert '<p class="error">the request body is over 16 MiB</p>' in answer.body
    assert_console_headers(answer)


def test_a_chunked_body_over_the_limit_gets_the_consoles_413(world: World) -> None:
    # one chunk whose size line and data come to one byte over the limit, sent in full, so
    # the server reads all of it before it answers and closes
    size = MAX_UPLOAD_BYTES + 1 - len("FFFFF9\r\n")
    body = f"{size:X}\r\n".encode() + b"\xff" * size
    assert len(body) == MAX_UPLOAD_BYTES + 1
    answer = exchange(
        world,
        f"127.0.0.1:{world.server.port}",
        f"POST /api/search HTTP/1.1\r\n{BEARER}\r\nContent-Type: multipart/form-data; "
        "boundary=xyz\r\nTransfer-Encoding: chunked",
        body,
    )
    assert answer.status == 413
    assert json.loads(answer.body) == {"error": "the request body is over 16 MiB"}
    assert_console_headers(answer)


def test_a_body_within_the_limit_still_reaches_the_app(world: World) -> None:
    answer = requests.post(
        f"{world.url}/api/search",
        headers={"Authorization": f"Bearer {PASSWORD}"},
        files={"image": ("big.jpg", b"\xff" * (MAX_UPLOAD_BYTES - 64 * 1024))},
        timeout=60,
    )
    assert answer.status_code == 400  # read and judged: not an image the gallery takes
    assert "not an image" in answer.json()["error"]


def test_the_console_answers_beside_many_idle_connections(world: World) -> None:
    idle: list[socket.socket] = []
    try:
        for n in range(IDLE_CONNECTIONS):
            sock = socket.create_connection((world.server.host, world.server.port), timeout=10)
            idle.append(sock)
            if n % 2:  # half of them stop in the middle of a request line
                sock.sendall(b"GET /api/sta")
        answer = requests.get(
            f"{world.url}/api/status", headers={"Authorization": f"Bearer {PASSWORD}"}, timeout=60
        )
        assert answer.status_code == 200
        assert answer.json()["libraries"][0]["name"] == "photos"
    finally:
        for sock in idle:
            sock.close()
