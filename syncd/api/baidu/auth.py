"""Authentication of API calls: bce-auth-v1 request signing and the cached access token.

The signing functions are pure (inputs in, strings out) so they can be checked against
Baidu's BCE authentication spec step by step. ``TokenCache`` holds the OAuth access token
of token mode, shared by every worker thread of one client.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

BCE_AUTH_VERSION = "bce-auth-v1"
#: seconds a bce-auth-v1 signature stays valid
BCE_EXPIRATION_SECONDS = 1800
#: headers every signed request carries and signs (lowercase)
BCE_SIGNED_HEADERS: tuple[str, ...] = ("host", "x-bce-date")

# RFC 3986 unreserved characters stay as they are; every other byte is %XX (uppercase hex).
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_ENCODE_TABLE: tuple[str, ...] = tuple(
    chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256)
)


def uri_encode(value: str, *, keep_slash: bool = False) -> str:
    """Percent-encode ``value`` (UTF-8) as the BCE spec asks: only A-Za-z0-9-_.~ stay literal.

    With ``keep_slash`` a ``/`` stays literal too (for the canonical URI).
    """
    table = _ENCODE_TABLE
    out = [table[b] for b in value.encode("utf-8")]
    if keep_slash:
        out = ["/" if part == "%2F" else part for part in out]
    return "".join(out)


def bce_timestamp(when: datetime | None = None) -> str:
    """The UTC timestamp of a signature, e.g. ``2015-03-24T13:02:00Z`` (now when ``when`` is None)."""
    moment = when.astimezone(UTC) if when is not None else datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_query_string(query: Mapping[str, str]) -> str:
    """Query parameters as ``k=v`` pairs, both uri-encoded, sorted, joined with ``&``.

    ``authorization`` is never part of it, as the spec says.
    """
    pairs = [
        f"{uri_encode(k)}={uri_encode(v)}" for k, v in query.items() if k.lower() != "authorization"
    ]
    return "&".join(sorted(pairs))


def canonical_headers(headers: Mapping[str, str], signed: tuple[str, ...]) -> str:
    """The signed headers as ``name:value`` lines: lowercase name, uri-encoded trimmed value, sorted."""
    wanted = {name.lower() for name in signed}
    lines = [
        f"{uri_encode(name.strip().lower())}:{uri_encode(value.strip())}"
        for name, value in headers.items()
        if name.strip().lower() in wanted
    ]
    return "\n".join(sorted(lines))


def canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    signed: tuple[str, ...],
) -> str:
    """Method, canonical URI, canonical query string and canonical headers, ``\\n``-joined."""
    return "\n".join(
        [
            method.upper(),
            uri_encode(path, keep_slash=True),
            canonical_query_string(query),
            canonical_headers(headers, signed),
        ]
    )


def bce_signing_key(
    access_key: str, secret_key: str, timestamp: str, expiration: int = BCE_EXPIRATION_SECONDS
) -> str:
    """Hex HMAC-SHA256 of ``bce-auth-v1/{ak}/{timestamp}/{expiration}`` keyed with the secret."""
    prefix = f"{BCE_AUTH_VERSION}/{access_key}/{timestamp}/{expiration}"
    return hmac.new(secret_key.encode("utf-8"), prefix.encode("utf-8"), hashlib.sha256).hexdigest()


def bce_authorization(
    *,
    access_key: str,
    secret_key: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    timestamp: str,
    signed: tuple[str, ...] = BCE_SIGNED_HEADERS,
    expiration: int = BCE_EXPIRATION_SECONDS,
) -> str:
    """The ``authorization`` header value of a bce-auth-v1 signed request.

    ``headers`` must hold every name in ``signed`` with the value that is sent; ``timestamp``
    must equal the ``x-bce-date`` header. The result holds a signature: never log it.
    """
    missing = [name for name in signed if name not in {h.lower() for h in headers}]
    if missing:
        raise ValueError(f"headers to sign are missing: {', '.join(missing)}")
    key = bce_signing_key(access_key, secret_key, timestamp, expiration)
    request = canonical_request(method, path, query, headers, signed)
    signature = hmac.new(key.encode("utf-8"), request.encode("utf-8"), hashlib.sha256).hexdigest()
    names = ";".join(sorted(name.lower() for name in signed))
    return f"{BCE_AUTH_VERSION}/{access_key}/{timestamp}/{expiration}/{names}/{signature}"


def renewal_delay(lifetime: float) -> float:
    """Seconds after issue at which a token of ``lifetime`` seconds is renewed.

    At 90 % of its life, or one hour before it ends when that is earlier, but never before
    half its life (so short-lived tokens are not fetched for every call).
    """
    return max(0.0, min(lifetime * 0.9, max(lifetime - 3600.0, lifetime * 0.5)))


@dataclass(frozen=True)
class AccessToken:
    """One OAuth access token; ``renew_at`` is on the ``time.monotonic`` clock (seconds)."""

    value: str = field(repr=False)
    generation: int
    renew_at: float


class TokenCache:
    """The shared access token of token mode: fetched once, renewed once per expiry.

    ``fetch`` obtains a new token and returns ``(token, lifetime seconds)``. Many threads
    finding the token expired (by the clock or by a 110/111 answer) cause one fetch: the
    generation counter tells a thread whether someone renewed since it read the token.
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[str, float]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._current: AccessToken | None = None
        self._generation = 0

    def __repr__(self) -> str:
        return f"TokenCache(generation={self._generation})"

    def get(self) -> AccessToken:
        """The current token, fetching it when there is none or its renewal time has come."""
        token = self._current
        if token is not None and self._clock() < token.renew_at:
            return token
        with self._lock:
            token = self._current
            if token is not None and self._clock() < token.renew_at:
                return token
            return self._renew_locked()

    def renew(self, stale_generation: int | None = None) -> AccessToken:
        """A fresh token: fetched unless another thread renewed since ``stale_generation``.

        Without ``stale_generation`` a new token is always fetched.
        """
        with self._lock:
            token = self._current
            if (
                token is not None
                and stale_generation is not None
                and token.generation != stale_generation
            ):
                return token
            return self._renew_locked()

    def _renew_locked(self) -> AccessToken:
        value, lifetime = self._fetch()
        self._generation += 1
        token = AccessToken(value, self._generation, self._clock() + renewal_delay(lifetime))
        self._current = token
        return token
