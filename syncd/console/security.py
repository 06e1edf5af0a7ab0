"""Who may use the console: sessions, the password, CSRF tokens and the login rate limit.

Sessions live in memory (a restart logs everyone out); a session is a random token in an
HttpOnly, SameSite=Strict cookie, with its own CSRF token. Passwords are compared in
constant time and never kept anywhere but the config snapshot.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

COOKIE_NAME = "syncd_console"
#: seconds a session lives without a request
SESSION_IDLE = 12 * 3600.0
#: sessions kept at most (the oldest go first): a flood of logins cannot fill the memory
MAX_SESSIONS = 1000
#: failed logins a client address may make per window
LOGIN_ATTEMPTS = 5
#: seconds of that window
LOGIN_WINDOW = 60.0
#: client addresses whose failures are remembered at most
MAX_TRACKED_CLIENTS = 10_000


@dataclass
class ConsoleSession:
    """One browser's session: its CSRF token, and a message for the next page."""

    token: str
    csrf: str
    last_used: float
    flash: list[str] = field(default_factory=list)


class SessionTable:
    """Sessions by token, expiring after ``SESSION_IDLE`` seconds without a request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, ConsoleSession] = {}

    def create(self) -> ConsoleSession:
        """A new session with fresh random tokens."""
        now = time.monotonic()
        session = ConsoleSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now)
        with self._lock:
            self._expire(now)
            while len(self._sessions) >= MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> ConsoleSession | None:
        """The live session of ``token``, its idle clock restarted; None when unknown."""
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(token)
            if session is None or now - session.last_used > SESSION_IDLE:
                self._sessions.pop(token, None)
                return None
            session.last_used = now
            return session

    def drop(self, token: str | None) -> None:
        """End the session of ``token`` (logout)."""
        if token:
            with self._lock:
                self._sessions.pop(token, None)

    def _expire(self, now: float) -> None:
        stale = [t for t, s in self._sessions.items() if now - s.last_used > SESSION_IDLE]
        for token in stale:
            del self._sessions[token]


class LoginLimiter:
    """At most ``LOGIN_ATTEMPTS`` failed logins per client address per ``LOGIN_WINDOW``."""

    def __init__(self, attempts: int = LOGIN_ATTEMPTS, window: float = LOGIN_WINDOW) -> None:
        self._attempts = attempts
        self._window = window
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                return 0.0
            while failures and now - failures[0] > self._window:
                failures.popleft()
            if len(failures) < self._attempts:
                return 0.0
            return max(0.0, self._window - (now - failures[0]))

    def failed(self, client: str) -> None:
        """Count a failed login of ``client``."""
        now = time.monotonic()
        with self._lock:
            if client not in self._failures and len(self._failures) >= MAX_TRACKED_CLIENTS:
                del self._failures[next(iter(self._failures))]
            self._failures.setdefault(client, deque()).append(now)


def password_matches(given: str, password: str) -> bool:
    """Constant-time comparison (of UTF-8 bytes: no early exit on a differing length)."""
    return bool(password) and hmac.compare_digest(given.encode(), password.encode())


def token_matches(given: str | None, expected: str) -> bool:
    """Whether a CSRF token from a form field or header is the session's."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


def host_refusal(host: str, listen_host: str, port: int) -> str:
    """Why a console without a password refuses a request whose ``Host`` header is ``host``,
    or "" when it answers it. ``listen_host`` and ``port`` are where the console listens.

    A web page can point a DNS name of its own at 127.0.0.1 (DNS rebinding); the browser
    then sends the console that page's name in ``Host``. So without a password the console
    answers only to a ``Host`` that no other site can stand behind:

    - an IP literal that is loopback: 127.0.0.0/8, and ``::1`` (IPv6 in brackets: ``[::1]``);
    - the name ``localhost``, in any case (``LocalHost``);
    - the host of the address it listens on (``console.listen``), as written there;

    with nothing after it but ``:PORT``, and PORT the port it listens on. Without a port
    (browsers leave out ``:80``) these are accepted too: a rebound name never looks like
    one. Names ending in a dot (``localhost.``, ``127.0.0.1.``) are refused: they are
    DNS names looked up as such, not the loopback name or an address.
    """
    if not host:
        return "the request has no Host header"
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket:
            return "the Host header is not HOST[:PORT]"
    else:
        name, colon, given = host.partition(":")
        rest = colon + given
    if rest:
        digits = rest[1:]
        if rest[0] != ":" or not (digits.isascii() and digits.isdigit() and len(digits) <= 5):
            return "the Host header is not HOST[:PORT]"
        if int(digits) != port:
            return f"the Host header names port {int(digits)}, the console listens on {port}"
    if _names_this_console(name, host.startswith("["), listen_host):
        return ""
    return (
        "the Host header is not a loopback address, localhost or the listen address: "
        "without a password the console answers to those only"
    )


def _names_this_console(name: str, bracketed: bool, listen_host: str) -> bool:
    """Whether the host part of a ``Host`` header is one :func:`host_refusal` accepts."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if bracketed:  # only an IPv6 literal goes in brackets, and without a zone
        if not isinstance(address, ipaddress.IPv6Address) or address.scope_id:
            return False
    elif ":" in name or isinstance(address, ipaddress.IPv6Address):
        return False
    if address is not None and address.is_loopback:
        return True
    if name.lower() == "localhost":
        return True
    return _same_host(name, listen_host)


def _same_host(name: str, listen_host: str) -> bool:
    """Whether ``name`` is the listen address's host (never a wildcard like 0.0.0.0)."""
    try:
        listen = ipaddress.ip_address(listen_host)
    except ValueError:
        return bool(listen_host) and name.lower() == listen_host.lower()
    try:
        return not listen.is_unspecified and ipaddress.ip_address(name) == listen
    except ValueError:
        return False


#: sent with every answer: no inline script, no framing, no sniffing, no referrer leaks
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
