"""Which ``Host`` a console without a password answers to, over real HTTP on loopback: a web
page that points a DNS name of its own at 127.0.0.1 (DNS rebinding) gets a 421, no session
and no CSRF token, and cannot release held deletes; this machine's own names get in."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass

import pytest

from .conftest import PASSWORD, World

#: Host headers a rebound name (or a request meant for another server) sends; {port} is the
#: console's port, {wrong} another one
REBOUND = [
    "127.0.0.1.evil.example:{port}",
    "127.0.0.1.evil.example",
    "127.evil.example:{port}",
    "localhost.evil.example:{port}",
    "[::1].evil:{port}",
    "[::1].evil",
    "localhost.:{port}",
    "localhost.",
    "127.0.0.1.:{port}",
    "LOCALHOST.Evil.Example:{port}",
    "evil.example:{port}",
    "0.0.0.0:{port}",
    "[127.0.0.1]:{port}",
    "127.0.0.1:{wrong}",
    "localhost:{wrong}",
    "[::1]:{wrong}",
    "127.0.0.1:",
    "",
]
#: Host headers of this machine's own names
ACCEPTED = [
    "127.0.0.1:{port}",
    "127.0.0.2:{port}",
    "[::1]:{port}",
    "localhost:{port}",
    "LocalHost:{port}",
    "127.0.0.1",
    "localhost",
    "[::1]",
]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str


def exchange(world: World, host: str | None, head: str, body: bytes = b"") -> Answer:
    """Send ``head`` (request line and headers, without Host) with ``Host: host`` (none when
    None) byte for byte, and read the whole answer."""
    lines = head.rstrip("\r\n").split("\r\n")
    if host is not None:
        lines.insert(1, f"Host: {host}")
    data = ("\r\n".join(lines + ["Connection: close"]) + "\r\n\r\n").encode("latin-1") + body
    with socket.create_connection((world.server.host, world.server.port), timeout=30) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    raw_head, _, raw_body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split(" ", 2)[1]), headers, raw_body.decode("utf-8"))


def host_of(form: str, world: World) -> str:
    return form.format(port=world.server.port, wrong=world.server.port + 1)


def browser_get(world: World, host: str | None, path: str = "/") -> Answer:
    return exchange(world, host, f"GET {path} HTTP/1.1\r\nAccept: text/html")


def csrf_token(page: str) -> str:
    """The CSRF token a page hands out; "" when it has none."""
    found = re.search(r'name="csrf-token" content="([^"]*)"', page)
    return found.group(1) if found else ""


def held_deletes(world: World) -> int:
    status = json.loads(world.site.syncd("status", "--json").out)
    return int(status["libraries"][0]["held_deletes"])


@pytest.mark.parametrize("form", REBOUND)
def test_a_rebound_host_gets_421_and_no_session(open_world: World, form: str) -> None:
    answer = browser_get(open_world, host_of(form, open_world))
    assert answer.status == 421
    assert "set-cookie" not in answer.headers
    assert csrf_token(answer.body) == ""
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    (reason,) = re.findall(r'<p class="error">([^<]*)</p>', answer.body)
    assert "Host" in reason and "\n" not in reason


def test_a_request_without_a_host_header_gets_421(open_world: World) -> None:
    assert exchange(open_world, None, "GET /api/status HTTP/1.0").status == 421


@pytest.mark.parametrize("form", ACCEPTED)
def test_this_machines_own_names_get_in_with_a_session(open_world: World, form: str) -> None:
    answer = browser_get(open_world, host_of(form, open_world))
    assert answer.status == 200
    assert "syncd_console=" in answer.headers["set-cookie"]
    assert csrf_token(answer.body)


def test_the_api_refuses_a_rebound_host_in_json(open_world: World) -> None:
    rebound = host_of("127.0.0.1.evil.example:{port}", open_world)
    answer = exchange(open_world, rebound, "GET /api/status HTTP/1.1")
    assert answer.status == 421
    assert answer.headers["content-type"] == "application/json"
    assert set(json.loads(answer.body)) == {"error"}
    own = exchange(open_world, host_of("127.0.0.1:{port}", open_world), "GET /api/status HTTP/1.1")
    assert own.status == 200


def test_a_page_on_a_rebound_name_cannot_release_held_deletes(open_world: World) -> None:
    rebound = host_of("127.0.0.1.evil.example:{port}", open_world)
    origin = f"http://{rebound}"
    # what the page did: load a console page for a session and its CSRF token...
    page = browser_get(open_world, rebound, "/held/confirm?library=photos")
    assert page.status == 421
    assert "set-cookie" not in page.headers
    assert csrf_token(page.body) == ""
    # ...then post the release, as the browser sends a same-origin form; refused even with
    # a session and token of this machine's own name
    own = host_of("127.0.0.1:{port}", open_world)
    confirm = browser_get(open_world, own, "/held/confirm?library=photos")
    cookie = confirm.headers["set-cookie"].split(";", 1)[0]
    token = csrf_token(confirm.body)
    assert token
    for extra, form in (
        ("", "library=photos"),
        (f"\r\nCookie: {cookie}", f"library=photos&csrf={token}"),
    ):
        body = form.encode()
        refused = exchange(
            open_world,
            rebound,
            "POST /held/release HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nOrigin: {origin}\r\nSec-Fetch-Site: same-origin"
            f"{extra}",
            body,
        )
        assert refused.status == 421
        assert "set-cookie" not in refused.headers
    assert held_deletes(open_world) == 11
    # the same release from this machine's own name lets them go: the refusal was the Host
    body = f"library=photos&csrf={token}".encode()
    released = exchange(
        open_world,
        own,
        "POST /held/release HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nOrigin: http://{own}\r\nSec-Fetch-Site: same-origin"
        f"\r\nCookie: {cookie}",
        body,
    )
    assert released.status == 303
    assert held_deletes(open_world) == 0


def test_with_a_password_any_host_is_let_through_to_the_login(world: World) -> None:
    rebound = host_of("127.0.0.1.evil.example:{port}", world)
    assert exchange(world, rebound, "GET /api/status HTTP/1.1").status == 401
    bearer = exchange(
        world, rebound, f"GET /api/status HTTP/1.1\r\nAuthorization: Bearer {PASSWORD}"
    )
    assert bearer.status == 200
    assert exchange(world, "syncd.example.org", "GET /login HTTP/1.1").status == 200
