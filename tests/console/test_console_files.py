"""Thumbnails over HTTP: of files the ledger knows only, cached by the browser, and never
a byte from outside the libraries, whatever the path or a swapped symlink."""

from __future__ import annotations

import socket
from pathlib import Path

import requests

from devkit.imagegen import make_image

from .clients import BEARER, kept_file_id
from .conftest import PASSWORD, World


def test_a_thumbnail_of_a_known_file_is_cached_by_the_browser(world: World) -> None:
    file_id = kept_file_id(world, "pics/p01.jpg")
    answer = requests.get(f"{world.url}/thumb/{file_id}", headers=BEARER)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "image/jpeg"
    assert answer.content[:2] == b"\xff\xd8"
    assert "max-age" in answer.headers["Cache-Control"]
    again = requests.get(
        f"{world.url}/thumb/{file_id}",
        headers={**BEARER, "If-None-Match": answer.headers["ETag"]},
    )
    assert again.status_code == 304
    assert again.content == b""


def _raw_get(world: World, target: str) -> tuple[int, bytes]:
    """GET ``target`` byte for byte (no client-side normalisation of ``..`` or ``%2e``)."""
    host, port = world.server.host, world.server.port
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {PASSWORD}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def test_thumbnails_never_serve_a_byte_from_outside_the_libraries(
    world: World, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = make_image(99, size=(64, 64))
    (outside / "secret.jpg").write_bytes(secret)
    (outside / "p02.jpg").write_bytes(secret)
    marker = b"SECRET-MARKER-0123456789"
    (outside / "passwd").write_bytes(marker)
    # a known file swapped for a symlink out of the root; a folder swapped likewise
    p01 = world.site.root / "pics/p01.jpg"
    p01_id = kept_file_id(world, "pics/p01.jpg")
    p02_id = kept_file_id(world, "pics/p02.jpg")
    p01.unlink()
    p01.symlink_to(outside / "secret.jpg")
    pics = world.site.root / "pics"
    moved = world.site.root / "pics-moved"
    pics.rename(moved)
    pics.symlink_to(outside)
    targets = [
        f"/thumb/{p01_id}",
        f"/thumb/{p02_id}",
        "/thumb/../../outside/passwd",
        "/thumb/..%2f..%2foutside%2fpasswd",
        "/thumb/%2e%2e/%2e%2e/outside/passwd",
        f"/thumb/{outside / 'passwd'}",
        f"/thumb/{str(outside / 'passwd').replace('/', '%2f')}",
        "/thumb/-1",
        "/thumb/0",
        "/thumb/99999999",
        "/thumb/1e3",
        "/thumb/%00",
        "/thumb/" + "9" * 40,
        "/static/../../syncd/config.py",
        "/static/%2e%2e%2fapp.py",
    ]
    for target in targets:
        status, data = _raw_get(world, target)
        assert status in (400, 404), (target, status)
        assert marker not in data, target
        assert secret[200:264] not in data, target
        assert b"Traceback" not in data, target
