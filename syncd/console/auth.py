"""Who gets in: the Host check of a console without a password, sessions and their CSRF
tokens, the bearer password of scripts, and the login and logout pages. The primitives
(session table, constant-time comparisons, the login limit, the Host rule) are in
:mod:`syncd.console.security`.
"""

from __future__ import annotations

import logging

from werkzeug.wrappers import Request, Response

from syncd.console.security import (
    COOKIE_NAME,
    LoginLimiter,
    SessionTable,
    host_refusal,
    password_matches,
    token_matches,
)
from syncd.console.web import Access, Pages, Refused, redirect

log = logging.getLogger("syncd.console")


class Gate:
    """The console's door: ``password`` ("" for the open mode: loopback only, no login)."""

    def __init__(self, password: str, pages: Pages) -> None:
        self.password = password
        self.open_mode = not password
        self.pages = pages
        #: where the server listens (host, port), for the Host check; set by the server
        self.listen: tuple[str, int] = ("", 0)
        self.sessions = SessionTable()
        self.limiter = LoginLimiter()

    def check_host(self, request: Request) -> None:
        """Refuse (421) a request whose Host no other site can stand behind, in the open
        mode: a DNS name rebound to 127.0.0.1 by a web page must not reach the console."""
        if not self.open_mode:
            return
        reason = host_refusal(request.environ.get("HTTP_HOST", ""), *self.listen)
        if reason:
            raise Refused(421, reason)

    def access(self, request: Request) -> Access | None:
        """How ``request`` gets in; None when it does not."""
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer " and password_matches(auth[7:].strip(), self.password):
            return Access(None, bearer=True)
        session = self.sessions.get(request.cookies.get(COOKIE_NAME))
        if session is not None:
            return Access(session)
        if self.open_mode:
            # a browser gets a session (and its CSRF token); a script on this host needs none
            browser = request.method == "GET" and "text/html" in request.headers.get("Accept", "")
            return Access(self.sessions.create() if browser else None)
        return None

    def check_csrf(self, request: Request, access: Access) -> None:
        """Refuse (403) a state-changing request a browser may have sent from another site."""
        if access.bearer:
            return  # a password in a header is not something a browser sends on its own
        if access.session is None:
            # the open mode's scripts: refuse what a browser sent from another site
            if request.headers.get("Origin") or request.headers.get("Sec-Fetch-Site") not in (
                None,
                "same-origin",
                "none",
            ):
                raise Refused(403, "missing CSRF token")
            return
        given = request.headers.get("X-CSRF-Token") or request.form.get("csrf")
        if not token_matches(given, access.session.csrf):
            raise Refused(403, "missing or wrong CSRF token: reload the page")

    def keep_session(self, request: Request, response: Response, access: Access) -> None:
        """Give the browser its session's cookie when it does not send it yet."""
        if access.session is not None and request.cookies.get(COOKIE_NAME) != access.session.token:
            set_cookie(request, response, access.session.token)

    def login(self, request: Request) -> Response:
        """The login page (GET), and the password it sends (POST), at most
        ``LOGIN_ATTEMPTS`` failures a minute per client address."""
        if self.open_mode:
            return redirect("/")
        if request.method == "GET":
            return self.pages.page("login.html", error="")
        client = request.remote_addr or "?"
        wait = self.limiter.retry_after(client)
        if wait > 0:
            response = self.pages.page(
                "login.html", code=429, error="too many failed logins: try again in a minute"
            )
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        if not password_matches(request.form.get("password", ""), self.password):
            self.limiter.failed(client)
            log.warning("console: failed login from %s", client)
            return self.pages.page("login.html", code=401, error="wrong password")
        session = self.sessions.create()
        response = redirect("/")
        set_cookie(request, response, session.token)
        return response

    def logout(self, request: Request, access: Access) -> Response:
        """End the session and go to the login page."""
        self.sessions.drop(request.cookies.get(COOKIE_NAME))
        response = redirect("/login")
        response.delete_cookie(COOKIE_NAME, path="/")
        return response


def set_cookie(request: Request, response: Response, token: str) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Secure behind HTTPS."""
    secure = request.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https"
    response.set_cookie(
        COOKIE_NAME, token, httponly=True, samesite="Strict", secure=secure, path="/"
    )
