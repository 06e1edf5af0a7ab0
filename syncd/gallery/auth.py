"""Authentication of the local gallery: the token endpoint, access tokens, bce-auth-v1.

Keys set to "" accept any client: tokens are issued to any client_id, and bce
signatures are accepted from any AK (still verified when a secret key is set). With a
key set, the server's ``/_syncd/`` extensions ask for the same credentials as API calls.

bce-auth-v1 (Baidu Cloud authentication): ``authorization`` is
``bce-auth-v1/{ak}/{timestamp}/{expiration}/{signedHeaders}/{signature}`` with
signing key = hex HMAC-SHA256(sk, "bce-auth-v1/{ak}/{timestamp}/{expiration}") and
signature = hex HMAC-SHA256(signing key, METHOD\\nURI\\nQUERY\\nHEADERS), where URI is
the uri-encoded path keeping '/', QUERY the sorted uri-encoded ``k=v`` pairs without
``authorization``, and HEADERS the sorted ``name:value`` lines (lower-case name,
trimmed value, both uri-encoded) of the signed headers.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, quote, quote_plus

from syncd.gallery.store import GalleryStore

#: the scope the official SDK looks for before it uses token mode
BRAIN_ALL_SCOPE: Final = "brain_all_scope"
DEFAULT_TOKEN_SCOPE: Final = (
    "public brain_all_scope brain_realtime_search brain_image_search wise_adapt"
    " lebo_resource_base lightservice_public hetu_basic lightcms_map_poi"
)
#: seconds a bce-auth-v1 timestamp may lie in the future (clock skew between hosts)
BCE_CLOCK_SKEW: Final = 900
#: headers signed when ``signedHeaders`` is empty (the BCE default set)
_DEFAULT_SIGNED: Final = ("host", "content-length", "content-type", "content-md5")


@dataclass(frozen=True)
class TokenAnswer:
    """The token endpoint's HTTP status and JSON body."""

    status: int
    body: dict[str, object]


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def _app_id(client_id: str) -> int:
    """A stable eight-digit app id for a client id, as Baidu tokens end with one."""
    return 10_000_000 + zlib.crc32(client_id.encode("utf-8", "replace")) % 90_000_000


class Authenticator:
    """Issues access tokens and checks the credentials of each API call (thread-safe)."""

    def __init__(
        self,
        store: GalleryStore,
        api_key: str,
        secret_key: str,
        token_lifetime: Callable[[], float],
        token_scope: str = DEFAULT_TOKEN_SCOPE,
    ) -> None:
        self._store = store
        self._api_key = api_key
        self._secret_key = secret_key
        self._lifetime = token_lifetime
        self.token_scope = token_scope
        self._lock = threading.Lock()
        self._tokens = store.load_tokens(issued_after=time.time() - max(token_lifetime(), 0.0))

    def __repr__(self) -> str:
        return f"Authenticator(api_key_set={bool(self._api_key)}, tokens={len(self._tokens)})"

    @property
    def keys_set(self) -> bool:
        """Whether an API key or a secret key is set (else any client is accepted)."""
        return bool(self._api_key or self._secret_key)

    def issue_token(self, params: Mapping[str, str]) -> TokenAnswer:
        """Answer ``/oauth/2.0/token`` (grant_type=client_credentials) as Baidu does."""
        grant_type = params.get("grant_type")
        if not grant_type:
            return TokenAnswer(
                400, {"error": "invalid_request", "error_description": "grant_type is required"}
            )
        if grant_type != "client_credentials":
            return TokenAnswer(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "The authorization grant type is not supported",
                },
            )
        client_id = params.get("client_id", "")
        client_secret = params.get("client_secret", "")
        if not client_id or (self._api_key and not _same(client_id, self._api_key)):
            return TokenAnswer(
                401, {"error": "invalid_client", "error_description": "unknown client id"}
            )
        if self._secret_key and not _same(client_secret, self._secret_key):
            return TokenAnswer(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
            )
        now = time.time()
        lifetime = max(0, int(self._lifetime()))
        app_id = _app_id(client_id)
        token = f"24.{secrets.token_hex(16)}.{lifetime}.{int(now)}-{app_id}"
        self._store.save_token(token, client_id, now)
        with self._lock:
            self._tokens[token] = now
        return TokenAnswer(
            200,
            {
                "refresh_token": f"25.{secrets.token_hex(16)}.315360000.{int(now)}-{app_id}",
                "expires_in": lifetime,
                "session_key": secrets.token_urlsafe(48),
                "access_token": token,
                "scope": self.token_scope,
                "session_secret": secrets.token_hex(16),
            },
        )

    def check_token(self, token: str) -> int | None:
        """None if ``token`` is valid, else 110 (unknown) or 111 (expired)."""
        with self._lock:
            issued_at = self._tokens.get(token)
        if issued_at is None:
            return 110
        if time.time() >= issued_at + self._lifetime():
            return 111
        return None

    def check_signature(
        self,
        authorization: str,
        method: str,
        path: bytes,
        query: str,
        headers: Mapping[str, str],
        now: float | None = None,
    ) -> bool:
        """Whether a bce-auth-v1 ``authorization`` is valid and fresh for this request.

        ``path`` is the raw request path, ``query`` the raw query string, ``headers`` a
        case-insensitive mapping of the request headers.
        """
        parts = authorization.strip().split("/")
        if len(parts) != 6 or parts[0] != "bce-auth-v1":
            return False
        _, access_key, timestamp, expiration, signed_headers, signature = parts
        if not access_key or (self._api_key and not _same(access_key, self._api_key)):
            return False
        try:
            issued = calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ"))
            lifetime = int(expiration)
        except (ValueError, OverflowError):
            return False
        now = time.time() if now is None else now
        if lifetime <= 0 or now > issued + lifetime or issued > now + BCE_CLOCK_SKEW:
            return False
        if not self._secret_key:
            return True
        auth_prefix = f"bce-auth-v1/{access_key}/{timestamp}/{expiration}"
        signing_key = hmac.new(
            self._secret_key.encode(), auth_prefix.encode(), hashlib.sha256
        ).hexdigest()
        canonical_uri = quote(path, safe="/")
        names = [n.strip().lower() for n in signed_headers.split(";") if n.strip()]
        if not names:
            names = [
                n for n in headers if n.lower() in _DEFAULT_SIGNED or n.lower().startswith("x-bce-")
            ]
        for host in _host_variants(headers.get("host", "")):
            canonical_headers = _canonical_headers(names, headers, host)
            for canonical_query in _canonical_queries(query):
                canonical = "\n".join(
                    (method.upper(), canonical_uri, canonical_query, canonical_headers)
                )
                expected = hmac.new(
                    signing_key.encode(), canonical.encode("utf-8", "replace"), hashlib.sha256
                ).hexdigest()
                if hmac.compare_digest(expected, signature.lower()):
                    return True
        return False


def _host_variants(host: str) -> list[str]:
    """The Host header as sent, and without its port (the official SDK signs that)."""
    variants = [host]
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if host.startswith("[") and "]:" in host:  # IPv6 literal with a port
        bare = host.rsplit(":", 1)[0]
    if bare != host:
        variants.append(bare)
    return variants


def _canonical_headers(names: list[str], headers: Mapping[str, str], host: str) -> str:
    lines = []
    for name in dict.fromkeys(n.lower() for n in names):
        value = host if name == "host" else headers.get(name)
        if value is None:
            continue
        lines.append(f"{quote(name, safe='')}:{quote(value.strip(), safe='')}")
    return "\n".join(sorted(lines))


def _canonical_queries(query: str) -> list[str]:
    """The canonical query string per RFC 3986 encoding, and per form encoding
    ('+' for spaces, as the official SDK's urlencode writes it)."""
    pairs = [
        (k, v)
        for k, v in parse_qsl(query, keep_blank_values=True, errors="replace")
        if k.lower() != "authorization"
    ]
    strict = "&".join(sorted(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs))
    form = "&".join(sorted(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k, v in pairs))
    return [strict] if form == strict else [strict, form]
