"""Baidu's image-search client: one object for the three galleries and their four operations.

A gallery is data (``syncd.api.baidu.galleries.GALLERIES``): its URL prefix and how it tags items.
Every answer becomes a typed result or an error of ``syncd.errors``; nothing is retried
here except one token renewal in token mode (the sync engine owns retries and backoff).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import requests

from syncd.api.baidu.auth import TokenCache, bce_authorization, bce_timestamp
from syncd.api.baidu.galleries import GALLERIES, TOKEN_PATH, Gallery, GalleryName, Operation
from syncd.api.baidu.params import (
    FORM_CONTENT_TYPE,
    CallParams,
    add_params,
    delete_params,
    encode_form,
    search_params,
    update_params,
)
from syncd.api.baidu.results import (
    MalformedAnswer,
    decode_answer,
    parse_add,
    parse_delete,
    parse_search,
    parse_update,
)
from syncd.api.port import AddResult, DeleteResult, SearchPage, UpdateResult
from syncd.api.redact import install_log_redaction, redact_url, scrub
from syncd.api.transport import (
    build_session,
    combined_ca_file,
    environment_settings,
    timeouts,
    transport_error,
)
from syncd.errors import (
    ApiError,
    BadImageError,
    BadRequestError,
    ConfigError,
    FatalSetupError,
    TokenError,
    TransientError,
    ValidationError,
)

if TYPE_CHECKING:
    from syncd.config import ApiConfig, AuthMode

log = logging.getLogger("syncd.api")

#: seconds a token lives when the answer does not say (the API's documented 30 days)
DEFAULT_TOKEN_LIFETIME = 30 * 24 * 3600.0
#: OAuth error codes (RFC 6749) that say "try again later" rather than "wrong credentials"
_OAUTH_TRANSIENT = frozenset({"server_error", "temporarily_unavailable"})


def _check_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"api.endpoint: expected an http(s) base URL, got {endpoint!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("api.endpoint: credentials belong in api_key/secret_key, not the URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"api.endpoint: a base URL has no query or fragment: {endpoint!r}")
    return endpoint.rstrip("/")


class ImageSearchClient:
    """Calls the image-search API of one account; safe to share between worker threads.

    ``endpoint`` is the base URL (``https://aip.baidubce.com`` or a local gallery server).
    ``auth`` is ``"token"`` (OAuth access token from ``api_key``/``secret_key``) or
    ``"bce"`` (each request signed with bce-auth-v1). ``concurrency`` sizes the connection
    pool, ``timeout`` is seconds per call, ``ca_bundle`` a PEM file of extra CAs trusted
    besides certifi's (TLS is always verified).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str,
        secret_key: str,
        auth: AuthMode = "token",
        concurrency: int = 4,
        timeout: float = 30.0,
        ca_bundle: str = "",
    ) -> None:
        self.endpoint = _check_endpoint(endpoint)
        if auth not in ("token", "bce"):
            raise ConfigError(f"api.auth: expected 'token' or 'bce', got {auth!r}")
        if not api_key or not secret_key:
            raise ConfigError("api.api_key and api.secret_key must both be set")
        if concurrency < 1:
            raise ConfigError(f"api.concurrency: expected an integer >= 1, got {concurrency}")
        if timeout <= 0:
            raise ConfigError(f"api.timeout: expected seconds > 0, got {timeout}")
        self.auth: AuthMode = auth
        self.concurrency = concurrency
        self.timeout = timeout
        self._api_key = api_key
        self._secret_key = secret_key
        self._timeouts = timeouts(timeout)
        self._verify: bool | str = True
        self._ca_cleanup: weakref.finalize[[bool], ImageSearchClient] | None = None
        if ca_bundle:
            ca_file = combined_ca_file(ca_bundle)
            self._verify = str(ca_file)
            # remove the combined CA file even when close() is never called
            self._ca_cleanup = weakref.finalize(self, ca_file.unlink, True)
        self._session = build_session(concurrency)
        self._proxies, self._verify = environment_settings(self.endpoint, self._verify)
        install_log_redaction()
        self._tokens = TokenCache(self._fetch_token)
        #: recent tokens, scrubbed from any text the server sends back (replaced, never mutated)
        self._seen_tokens: tuple[str, ...] = ()
        self._counts_lock = threading.Lock()
        self._counts: collections.Counter[tuple[GalleryName, Operation]] = collections.Counter()
        self._token_requests = 0
        #: called right before every request leaves (``syncd.api.port.ImageSearch.pace``),
        #: its body encoded and signed, the repeat after a token renewal too; what it
        #: raises reaches the caller, and nothing is sent
        self.pace: Callable[[], object] | None = None

    @classmethod
    def from_config(cls, api: ApiConfig, endpoint_url: str | None = None) -> ImageSearchClient:
        """A client for the ``[api]`` section; ``endpoint_url`` overrides ``api.endpoint``.

        The caller resolves ``endpoint = "embedded"`` to the in-process server's URL and
        passes it as ``endpoint_url``. A ``secret_key_file`` is read when ``secret_key``
        is empty.
        """
        endpoint = endpoint_url or api.endpoint
        if endpoint == "embedded":
            raise ConfigError("api.endpoint 'embedded' needs the local server's URL")
        secret = api.secret_key
        if not secret and api.secret_key_file:
            try:
                secret = Path(api.secret_key_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"api.secret_key_file: cannot read {api.secret_key_file}: {exc.strerror}"
                ) from None
        return cls(
            endpoint,
            api_key=api.api_key,
            secret_key=secret,
            auth=api.auth,
            concurrency=api.concurrency,
            timeout=api.timeout,
            ca_bundle=api.ca_bundle,
        )

    def __repr__(self) -> str:
        return f"ImageSearchClient(endpoint={self.endpoint!r}, auth={self.auth!r})"

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close pooled connections and remove the combined CA file, if any."""
        self._session.close()
        if self._ca_cleanup is not None:
            self._ca_cleanup()

    def __enter__(self) -> ImageSearchClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the operations ----------------------------------------------------------------

    def add(
        self,
        gallery: GalleryName,
        *,
        image: bytes | None = None,
        url: str | None = None,
        brief: str | None = None,
        tags: Sequence[int] = (),
    ) -> AddResult:
        """Add one image (raw bytes, base64-encoded here, or a url) with its brief and tags.

        On ``product`` the tags ``(c1,)`` or ``(c1, c2)`` are sent as class_id1/class_id2.
        Raises ItemExistsError (216681) when the gallery already holds the image.
        """
        params = add_params(self._gallery(gallery), image=image, url=url, brief=brief, tags=tags)
        return parse_add(self.send(gallery, params))

    def search(
        self,
        gallery: GalleryName,
        *,
        image: bytes | None = None,
        url: str | None = None,
        tags: Sequence[int] = (),
        tag_logic: int | None = None,
        pn: int | None = None,
        rn: int | None = None,
    ) -> SearchPage:
        """Search with one image; ``tags`` filter (``tag_logic`` 0 = and, 1 = or); page ``pn``/``rn``."""
        params = search_params(
            self._gallery(gallery),
            image=image,
            url=url,
            tags=tags,
            tag_logic=tag_logic,
            pn=pn,
            rn=rn,
        )
        return parse_search(self.send(gallery, params))

    def update(
        self,
        gallery: GalleryName,
        *,
        image: bytes | None = None,
        url: str | None = None,
        cont_sign: str | None = None,
        brief: str | None = None,
        tags: Sequence[int] | None = None,
    ) -> UpdateResult:
        """Change the brief and/or tags of one item, named by image, url or one cont_sign.

        Raises ItemMissingError (216680) when the gallery has no such item.
        """
        params = update_params(
            self._gallery(gallery),
            image=image,
            url=url,
            cont_sign=cont_sign,
            brief=brief,
            tags=tags,
        )
        return parse_update(self.send(gallery, params))

    def delete(
        self,
        gallery: GalleryName,
        *,
        image: bytes | None = None,
        url: str | None = None,
        cont_signs: Sequence[str] | None = None,
    ) -> DeleteResult:
        """Delete one item by image or url, or a batch of 1..1000 items by cont_sign."""
        params = delete_params(self._gallery(gallery), image=image, url=url, cont_signs=cont_signs)
        return parse_delete(self.send(gallery, params))

    def check(self, gallery: GalleryName | None = None) -> None:
        """Verify the credentials: obtain a fresh token (token mode), and probe a gallery.

        In bce mode, or when ``gallery`` is given, an empty search is sent to ``gallery``
        (``same_hq`` by default): a "missing parameter" answer proves the call was
        authenticated. Raises the ApiError that says what is wrong.
        """
        if self.auth == "token":
            self._tokens.renew()
            if gallery is None:
                return
        try:
            self.send(gallery or "same_hq", CallParams("search"))
        except (BadRequestError, BadImageError):
            return

    # -- accounting ----------------------------------------------------------------------

    def call_counts(self) -> dict[tuple[GalleryName, Operation], int]:
        """Calls sent so far per (gallery, operation), retries included (token calls not)."""
        with self._counts_lock:
            return dict(self._counts)

    @property
    def token_requests(self) -> int:
        """Access-token requests sent so far (token mode)."""
        with self._counts_lock:
            return self._token_requests

    # -- the wire ------------------------------------------------------------------------

    def send(self, gallery: GalleryName, params: CallParams) -> dict[str, Any]:
        """Post ``params`` to ``gallery`` as they are and return the answer's JSON object.

        No validation happens here (the operation methods validate); errors are raised
        as the ``syncd.errors`` class of the answer. ``pace`` (if set) is called right
        before each request leaves. In token mode a 110/111 answer renews the token once
        and repeats the call once; a second refusal raises TokenError.
        """
        path = self._gallery(gallery).path(params.op)
        body = encode_form(params)
        if self.auth == "bce":
            return self._post_signed(gallery, params.op, path, body)
        token = self._tokens.get()
        try:
            return self._post_with_token(gallery, params.op, path, body, token.value)
        except TokenError as exc:
            log.info("access token refused (%s); renewing it once", exc.code)
            token = self._tokens.renew(token.generation)
        return self._post_with_token(gallery, params.op, path, body, token.value)

    def _gallery(self, gallery: GalleryName) -> Gallery:
        found = GALLERIES.get(gallery)
        if found is None:
            raise ValidationError(f"unknown gallery {gallery!r}; expected one of {list(GALLERIES)}")
        return found

    def _secrets(self) -> tuple[str, ...]:
        return (self._secret_key, *self._seen_tokens)

    def _depart(self, gallery: GalleryName, op: Operation) -> None:
        """The request is built: wait at the caller's gate (``pace``), then count the call.
        Nothing may come between this and the post."""
        if self.pace is not None:
            self.pace()
        with self._counts_lock:
            self._counts[(gallery, op)] += 1

    def _post_with_token(
        self, gallery: GalleryName, op: Operation, path: str, body: bytes, token: str
    ) -> dict[str, Any]:
        url = f"{self.endpoint}{path}?{urlencode({'access_token': token})}"
        headers = {"Content-Type": FORM_CONTENT_TYPE}
        return self._post(gallery, op, url, body, headers)

    def _post_signed(
        self, gallery: GalleryName, op: Operation, path: str, body: bytes
    ) -> dict[str, Any]:
        url = f"{self.endpoint}{path}"
        parts = urlsplit(url)
        host = parts.netloc
        timestamp = bce_timestamp()
        signed = {"host": host, "x-bce-date": timestamp}
        authorization = bce_authorization(
            access_key=self._api_key,
            secret_key=self._secret_key,
            method="POST",
            path=parts.path,
            query={},
            headers=signed,
            timestamp=timestamp,
        )
        headers = {
            "Host": host,
            "x-bce-date": timestamp,
            "Content-Type": FORM_CONTENT_TYPE,
            "Authorization": authorization,
        }
        return self._post(gallery, op, url, body, headers, (authorization,))

    def _post(
        self,
        gallery: GalleryName,
        op: Operation,
        url: str,
        body: bytes,
        headers: dict[str, str],
        extra_secrets: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """One POST; the answer's JSON object or the taxonomy error it stands for.

        The request is prepared (its URL, headers and body as requests sends them) before
        the caller's gate (``_depart``): only the send comes after it.
        """
        what = f"{gallery}/{op}"
        secrets = self._secrets() + extra_secrets
        try:
            request = self._session.prepare_request(
                requests.Request("POST", url, data=body or {}, headers=headers)
            )
            self._depart(gallery, op)
            started = time.monotonic()
            response = self._session.send(
                request,
                timeout=self._timeouts,
                verify=self._verify,
                proxies=self._proxies,
                allow_redirects=False,
            )
            status, content = response.status_code, response.content
        except requests.RequestException as exc:
            error = transport_error(exc, secrets)
            log.debug("POST %s (%s) failed: %s", redact_url(url), what, error)
            raise error from None
        elapsed_ms = (time.monotonic() - started) * 1000
        try:
            answer = decode_answer(status, content, secrets)
        except ApiError as exc:
            log.debug(
                "POST %s (%s) -> HTTP %d in %.0f ms: %s",
                redact_url(url),
                what,
                status,
                elapsed_ms,
                exc,
            )
            raise
        if log.isEnabledFor(logging.DEBUG):  # redacting the URL costs more than the rest
            log.debug(
                "POST %s (%s) -> HTTP %d in %.0f ms, log_id %s",
                redact_url(url),
                what,
                status,
                elapsed_ms,
                answer.get("log_id"),
            )
        return answer

    def _fetch_token(self) -> tuple[str, float]:
        """Ask the OAuth endpoint for a new access token: (token, lifetime in seconds)."""
        query = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self._api_key,
                "client_secret": self._secret_key,
            }
        )
        url = f"{self.endpoint}{TOKEN_PATH}?{query}"
        with self._counts_lock:
            self._token_requests += 1
        secrets = self._secrets()
        try:
            response = self._session.post(
                url,
                timeout=self._timeouts,
                verify=self._verify,
                proxies=self._proxies,
                allow_redirects=False,
            )
            status, content = response.status_code, response.content
        except requests.RequestException as exc:
            error = transport_error(exc, secrets)
            log.debug("POST %s (token) failed: %s", redact_url(url), error)
            raise error from None
        refusal = _oauth_refusal(status, content, secrets)
        if refusal is not None:
            log.debug("POST %s (token) refused: %s", redact_url(url), refusal)
            raise refusal
        answer = decode_answer(status, content, secrets)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise MalformedAnswer(status, "token answer holds no access_token")
        try:
            lifetime = float(answer.get("expires_in", DEFAULT_TOKEN_LIFETIME))
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        self._seen_tokens = (*self._seen_tokens[-3:], token)
        log.debug("POST %s (token) -> new access token for %.0f s", redact_url(url), lifetime)
        return token, lifetime


def _oauth_refusal(status: int, content: bytes, secrets: tuple[str, ...]) -> ApiError | None:
    """The error for an OAuth refusal (``{"error": ..., "error_description": ...}``), if any.

    Refused credentials are a setup problem; a server that cannot answer now is transient.
    """
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None
    reason = f"{body['error']}: {body.get('error_description', '')}".strip(": ")
    text = scrub(f"Get service token failed ({reason})", secrets)
    if status >= 500 or body["error"] in _OAUTH_TRANSIENT:
        return TransientError(status, text)
    return FatalSetupError(13, text)
