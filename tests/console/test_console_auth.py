"""Who gets in, over real HTTP on loopback: credentials, the login and its limit, CSRF
tokens, the open mode's loopback rule, the security headers of every answer, and the
config that refuses a console beyond loopback without a password (conftest's
installation)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests

from syncd.config import parse_config
from syncd.errors import ConfigError

from .clients import BEARER, logged_in
from .conftest import PASSWORD, World

PAGES = ["/", "/failures", "/held", "/search", "/activity", "/held/confirm?library=photos"]

APIS = [
    "/api/status",
    "/api/calls",
    "/api/activity",
    "/static/overview.js",
    "/static/search.js",
    "/thumb/1",
]


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
