"""The web console over HTTP: who gets in, what a hostile request gets, and that the API
says what the command line says. A real installation and console on loopback (conftest)."""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from devkit.imagegen import make_image, rescale
from syncd.config import load_config, parse_config
from syncd.console import activity
from syncd.console.server import ConsoleServer
from syncd.console.status_cache import StatusCache
from syncd.errors import ConfigError
from syncd.gallery.server import GalleryServer
from syncd.ledger.browse import LedgerReader, failed_files
from syncd.ledger.models import File

from .conftest import PASSWORD, World, build_site

BEARER = {"Authorization": f"Bearer {PASSWORD}"}
PAGES = ["/", "/failures", "/held", "/search", "/activity", "/held/confirm?library=photos"]
APIS = [
    "/api/status",
    "/api/calls",
    "/api/activity",
    "/static/overview.js",
    "/static/search.js",
    "/thumb/1",
]


def logged_in(world: World) -> tuple[requests.Session, str]:
    """A browser-like session after the login form, and its CSRF token."""
    browser = requests.Session()
    answer = browser.post(f"{world.url}/login", data={"password": PASSWORD}, allow_redirects=False)
    assert answer.status_code == 303
    page = browser.get(f"{world.url}/failures")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None
    return browser, token.group(1)


def broken_file_id(world: World) -> int:
    reader = LedgerReader(world.config.ledger)
    try:
        with reader.reading() as session:
            page = failed_files(session)
    finally:
        reader.close()
    (broken,) = [f for f in page.files if f.relpath == "broken.jpg"]
    return broken.id


def kept_file_id(world: World, relpath: str) -> int:
    reader = LedgerReader(world.config.ledger)
    try:
        with reader.reading() as session:
            return int(session.scalars(select(File.id).where(File.relpath == relpath)).one())
    finally:
        reader.close()


def test_every_page_and_api_refuses_a_request_without_credentials(world: World) -> None:
    for path in PAGES + APIS:
        answer = requests.get(f"{world.url}{path}", allow_redirects=False)
        assert answer.status_code == 401, path
        assert PASSWORD not in answer.text
    for path in ("/api/search", "/api/retry", "/failures/retry", "/held/release"):
        assert requests.post(f"{world.url}{path}").status_code == 401, path


def test_a_wrong_password_or_session_gets_401(world: World) -> None:
    wrong = {"Authorization": "Bearer not-the-password"}
    assert requests.get(f"{world.url}/api/status", headers=wrong).status_code == 401
    forged = {"syncd_console": "made-up-session-token"}
    assert requests.get(f"{world.url}/api/status", cookies=forged).status_code == 401
    answer = requests.post(f"{world.url}/login", data={"password": "guess"}, allow_redirects=False)
    assert answer.status_code == 401
    assert "Set-Cookie" not in answer.headers


def test_the_login_page_and_its_style_are_public(world: World) -> None:
    assert requests.get(f"{world.url}/login").status_code == 200
    css = requests.get(f"{world.url}/static/console.css")
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")


def test_login_gives_an_httponly_strict_session_cookie_that_opens_every_page(world: World) -> None:
    answer = requests.post(f"{world.url}/login", data={"password": PASSWORD}, allow_redirects=False)
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    browser, _ = logged_in(world)
    for path in PAGES:
        assert browser.get(f"{world.url}{path}").status_code == 200, path


def test_logins_are_rate_limited_per_client(world: World) -> None:
    for _ in range(5):
        answer = requests.post(f"{world.url}/login", data={"password": "guess"})
        assert answer.status_code == 401
    blocked = requests.post(
        f"{world.url}/login", data={"password": PASSWORD}, allow_redirects=False
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Set-Cookie" not in blocked.headers


def test_state_changing_requests_need_the_sessions_csrf_token(world: World) -> None:
    browser, token = logged_in(world)
    for path, form in (
        ("/failures/retry", {}),
        ("/held/release", {"library": "photos"}),
        ("/logout", {}),
    ):
        refused = browser.post(f"{world.url}{path}", data=form, allow_redirects=False)
        assert refused.status_code == 403, path
        wrong = browser.post(
            f"{world.url}{path}", data={**form, "csrf": "x" + token}, allow_redirects=False
        )
        assert wrong.status_code == 403, path
    # nothing was released by the refused requests
    assert (
        json.loads(browser.get(f"{world.url}/api/status").text)["libraries"][0]["held_deletes"]
        == 11
    )
    ok = browser.post(f"{world.url}/failures/retry", data={"csrf": token}, allow_redirects=False)
    assert ok.status_code == 303
    by_header = browser.post(
        f"{world.url}/api/retry", headers={"X-CSRF-Token": token}, allow_redirects=False
    )
    assert by_header.status_code == 200


def without_as_of(document: dict[str, Any]) -> dict[str, Any]:
    """A status document without its ``as_of``, checked to be an ISO time with a zone."""
    as_of = datetime.fromisoformat(document.pop("as_of"))
    assert as_of.tzinfo is not None
    assert abs(as_of.timestamp() - time.time()) < 3600
    return document


def test_api_status_is_the_status_json_document(world: World) -> None:
    answer = requests.get(f"{world.url}/api/status", headers=BEARER)
    assert answer.status_code == 200
    command = world.site.syncd("status", "--json")
    assert without_as_of(answer.json()) == without_as_of(json.loads(command.out))
    (photos,) = answer.json()["libraries"]
    assert (photos["synced"], photos["failed"], photos["held_deletes"]) == (3, 1, 11)


def test_the_first_status_after_a_start_is_what_the_ledger_holds_then(
    tmp_path: Path, gallery_server: GalleryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every read counts as slow, so snapshots are served: the one read while the console
    # started must not be, since the service may change the ledger meanwhile
    monkeypatch.setattr(StatusCache, "FRESH_SECONDS", 0.0)
    site = build_site(tmp_path, gallery_server)
    with ConsoleServer(load_config(site.config)) as server:
        server.app.status_cache.close()  # the start's read is over
        site.write("pics/new.jpg", 99)
        site.syncd("reconcile")
        answer = requests.get(f"{server.url}/api/status", headers=BEARER)
        command = json.loads(site.syncd("status", "--json").out)
    assert without_as_of(answer.json())["libraries"] == without_as_of(command)["libraries"]
    assert answer.json()["libraries"][0]["synced"] == 4


def test_api_retry_queues_one_failed_file_again(world: World) -> None:
    file_id = broken_file_id(world)
    answer = requests.post(f"{world.url}/api/retry", headers=BEARER, json={"file": file_id})
    assert answer.status_code == 200
    assert answer.json()["files"] == 1
    unknown = requests.post(f"{world.url}/api/retry", headers=BEARER, json={"file": 987654})
    assert unknown.status_code == 404
    bad = requests.post(f"{world.url}/api/retry", headers=BEARER, json={"file": "-1"})
    assert bad.status_code == 400


def test_api_search_finds_the_file_and_names_its_path(world: World) -> None:
    image = (world.site.root / "pics/p01.jpg").read_bytes()
    answer = requests.post(
        f"{world.url}/api/search",
        headers=BEARER,
        files={"image": ("query.jpg", image, "image/jpeg")},
        data={"top": "5"},
    )
    assert answer.status_code == 200
    hits = answer.json()
    assert set(hits[0]) == {"score", "cont_sign", "brief", "paths"}
    assert hits[0]["paths"] == [str(world.site.root / "pics/p01.jpg")]


def test_api_search_leaves_out_hits_below_min_score(world: World) -> None:
    image = rescale((world.site.root / "pics/p01.jpg").read_bytes(), 3.0)

    def hits(**form: str) -> Any:
        answer = requests.post(
            f"{world.url}/api/search",
            headers=BEARER,
            files={"image": ("query.jpg", image, "image/jpeg")},
            data=form,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    (best, *_) = hits()
    assert best["paths"] == [str(world.site.root / "pics/p01.jpg")] and best["score"] < 1.0
    assert hits(min_score=f"{best['score'] - 0.01:.4f}")[0]["cont_sign"] == best["cont_sign"]
    assert hits(min_score=f"{min(best['score'] + 0.001, 1.0):.4f}") == []
    for wrong in ("abc", "-0.1", "1.5", "nan"):
        answer = requests.post(
            f"{world.url}/api/search",
            headers=BEARER,
            files={"image": ("query.jpg", image)},
            data={"min_score": wrong},
        )
        assert answer.status_code == 400, wrong
        assert answer.json() == {"error": "min_score: expected a number 0..1"}


def test_hostile_uploads_get_a_clear_4xx(world: World) -> None:
    url = f"{world.url}/api/search"
    huge = requests.post(
        url, headers=BEARER, files={"image": ("big.jpg", b"\xff" * (17 * 1024 * 1024))}
    )
    assert huge.status_code == 413
    garbled = requests.post(
        url,
        headers={**BEARER, "Content-Type": "multipart/form-data; boundary=xyz"},
        data=b"--nope\r\nthis is not multipart\r\n",
    )
    assert garbled.status_code == 400
    assert "error" in garbled.json()
    assert requests.post(url, headers=BEARER).status_code == 400
    not_image = requests.post(url, headers=BEARER, files={"image": ("a.jpg", b"plain text")})
    assert not_image.status_code == 400
    assert "Traceback" not in not_image.text
    for top in ("abc", "0", "-3", "99999"):
        answer = requests.post(
            url, headers=BEARER, files={"image": ("q.jpg", make_image(1))}, data={"top": top}
        )
        assert answer.status_code == 400, top
    unknown = requests.post(
        url, headers=BEARER, files={"image": ("q.jpg", make_image(1))}, data={"library": "x"}
    )
    assert unknown.status_code == 400


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


def test_every_answer_carries_the_security_headers(world: World) -> None:
    for path, headers in (("/login", {}), ("/api/status", {}), ("/", BEARER), ("/thumb/x", BEARER)):
        answer = requests.get(f"{world.url}{path}", headers=headers)
        csp = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_pages_carry_no_inline_script_and_no_asset_from_the_internet(world: World) -> None:
    browser, _ = logged_in(world)
    for path in PAGES + ["/login"]:
        html = browser.get(f"{world.url}{path}").text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"(src|href)=\"(https?:)?//", html), path
        assert " on" + "click=" not in html


def test_without_a_password_loopback_needs_no_login_and_says_so(open_world: World) -> None:
    page = requests.get(f"{open_world.url}/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "no password set" in page.text
    assert requests.get(f"{open_world.url}/api/status").status_code == 200
    # a page of another site cannot make the browser post here, nor rebind a name to us
    cross = requests.post(f"{open_world.url}/api/retry", headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    rebound = requests.get(
        f"{open_world.url}/api/status", headers={"Host": f"evil.example:{open_world.server.port}"}
    )
    assert rebound.status_code == 421


def _config(console: dict[str, object]) -> dict[str, object]:
    return {
        "console": console,
        "library": [{"name": "a", "root": "/srv/a", "gallery": "same_hq"}],
    }


def test_a_console_beyond_loopback_without_a_password_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^console\.password_file: required"):
        parse_config(_config({"listen": "0.0.0.0:8765"}), tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"^console\.colour: unknown key"):
        parse_config(_config({"colour": "blue"}), tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"^console\.listen: expected a string"):
        parse_config(_config({"listen": 8765}), tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"^console\.listen: expected \"host:port\""):
        parse_config(_config({"listen": "nowhere"}), tmp_path, environ={})
    loopback = parse_config(_config({"listen": "127.0.0.1:8765"}), tmp_path, environ={})
    assert loopback.console.password == ""
    env = {"SYNCD_CONSOLE_PASSWORD": "pw"}
    public = parse_config(_config({"listen": "0.0.0.0:8765"}), tmp_path, environ=env)
    assert public.console.password == "pw"
    assert "pw" not in repr(public)


def test_syncd_console_beyond_loopback_without_a_password_exits_2(world: World) -> None:
    text = world.site.config.read_text(encoding="utf-8")
    world.site.config.write_text(
        text.replace('listen = "127.0.0.1:0"', 'listen = "0.0.0.0:8765"').replace(
            'password_file = "./console-password"\n', ""
        ),
        encoding="utf-8",
    )
    outcome = world.site.syncd("console")
    assert outcome.code == 2
    assert outcome.err.strip().splitlines() == [
        "console.password_file: required when console.listen is not loopback "
        "(or $SYNCD_CONSOLE_PASSWORD)"
    ]


def test_the_console_reads_and_releases_on_a_postgresql_ledger(pg_world: World) -> None:
    status = requests.get(f"{pg_world.url}/api/status", headers=BEARER)
    assert without_as_of(status.json()) == without_as_of(
        json.loads(pg_world.site.syncd("status", "--json").out)
    )
    browser, token = logged_in(pg_world)
    failures = browser.get(f"{pg_world.url}/failures").text
    assert "broken.jpg" in failures
    file_id = kept_file_id(pg_world, "pics/p01.jpg")
    assert browser.get(f"{pg_world.url}/thumb/{file_id}").headers["Content-Type"] == "image/jpeg"
    released = browser.post(
        f"{pg_world.url}/held/release", data={"library": "photos", "csrf": token}
    )
    assert released.status_code == 200
    assert "11 held deletes let go" in released.text
    after = json.loads(pg_world.site.syncd("status", "--json").out)
    assert after["libraries"][0]["held_deletes"] == 0


def test_a_file_name_that_is_not_utf8_is_shown_escaped(world: World) -> None:
    name = b"caf\xe9-not-utf8.jpg"
    (world.site.root / name.decode("utf-8", "surrogateescape")).write_bytes(b"no picture")
    world.site.syncd("reconcile")
    browser, _ = logged_in(world)
    page = browser.get(f"{world.url}/failures")
    assert page.status_code == 200
    assert "caf\\xe9-not-utf8.jpg" in page.text


def test_a_search_error_says_what_is_wrong_once(world: World) -> None:
    answer = requests.post(
        f"{world.url}/search/hits",
        headers=BEARER,
        files={"image": ("a.jpg", b"plain text, no picture")},
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error.count("not an image") == 1, error


def test_the_activity_page_filters_by_outcome_and_refuses_an_unknown_one(world: World) -> None:
    world.site.write("pics/fresh.jpg", 77)
    world.site.syncd("reconcile")  # in this process: its workers' calls are recorded here
    added = requests.get(f"{world.url}/api/activity?outcome=added", headers=BEARER).json()
    assert added["recorded"] is True
    assert "pics/fresh.jpg" in [p for call in added["calls"] for p in call["paths"]]
    assert {call["outcome"] for call in added["calls"]} == {"added"}
    failed = requests.get(f"{world.url}/api/activity?outcome=error", headers=BEARER).json()
    assert "pics/fresh.jpg" not in [p for call in failed["calls"] for p in call["paths"]]
    assert added["last_by_library"]["photos"] >= added["calls"][0]["at"]
    bogus = requests.get(f"{world.url}/activity?outcome=bogus", headers=BEARER)
    assert bogus.status_code == 400


def test_a_console_without_the_service_says_no_activity_is_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(activity, "_ring", lambda: lambda limit: [])
    world.server.app.beside_sync = False  # as `syncd console` runs it
    page = requests.get(f"{world.url}/activity", headers=BEARER)
    assert page.status_code == 200
    assert "No activity recorded" in page.text
    assert requests.get(f"{world.url}/api/activity", headers=BEARER).json()["recorded"] is False
