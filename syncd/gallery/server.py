"""The local gallery server: the image-search API over HTTP (werkzeug app, waitress server).

Routes: ``/oauth/2.0/token`` (GET or POST), the four operations of each gallery at the
API document's paths (POST, form body), and extensions under ``/_syncd/``:
``health``, ``calls`` (API calls answered per gallery and operation) and
``items?gallery=NAME`` (live items). Every API answer is JSON with HTTP 200, as the
API answers, except injected HTTP 502s and dropped connections.

With keys set, the extensions ask for the credentials API calls present (HTTP 401 and
110/111/14 without them), except ``health``: it stays open for liveness probes and
then says only ``{"status": "ok"}``, the item counts going to callers with credentials.

A body over MAX_BODY_BYTES is answered HTTP 413 with error 216202 in the API's JSON
shape whatever the path, before anything else; beyond waitress's own limit it is not
read at all (waitress's other refusals of a malformed request are JSON too).

An API call goes through, in order: count, latency, authentication (110/111/14),
daily and QPS limits (17/18), injected transient failure, 216017, then the operation.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import secrets
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Final

from waitress.channel import ClientDisconnected
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from syncd.api.baidu.codes import error_message
from syncd.api.baidu.galleries import GALLERIES, GALLERY_NAMES, OPERATIONS, TOKEN_PATH, Operation
from syncd.errors import ApiError, ItemExistsError
from syncd.gallery.auth import BRAIN_ALL_SCOPE, DEFAULT_TOKEN_SCOPE, Authenticator
from syncd.gallery.faults import FaultConfig, FaultInjector, TransientFault
from syncd.gallery.form import form_params
from syncd.gallery.galleries import Galleries
from syncd.gallery.images import URL_TIMEOUT
from syncd.gallery.operations import Operations
from syncd.gallery.store import GalleryStore
from syncd.serving import Refused, WaitressServer

__all__ = [
    "BRAIN_ALL_SCOPE",
    "CHANNEL_TIMEOUT",
    "CONNECTION_LIMIT",
    "DEFAULT_TOKEN_SCOPE",
    "MAX_BODY_BYTES",
    "THREADS",
    "FaultConfig",
    "GalleryApp",
    "GalleryServer",
    "serve_forever",
]

logger = logging.getLogger("syncd.gallery")

#: largest request body, bytes: a 4 MiB base64 image fully percent-encoded, and change
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
#: open connections served at once, idle keep-alives and stalled clients included;
#: beyond it waitress stops accepting until one closes. Each holds a file descriptor:
#: keep it well under the process's open-file limit (often 1024)
CONNECTION_LIMIT: Final = 500
#: seconds a connection may stay open without a byte either way while no call of its
#: own runs; then it is closed, so stalled and idle clients give their place back
CHANNEL_TIMEOUT: Final = 30
#: threads running calls. Waitress reads each request whole before a thread sees it,
#: so a slow client holds no thread; only calls themselves (a url download) do
THREADS: Final = 8
#: waitress's refusals of a request it cannot read: HTTP status -> the API error code
#: (413: body over its limit, 431: request head too large, 400/501: malformed framing)
_REFUSAL_CODES: Final = {413: 216202, 431: 216103, 400: 216100, 501: 216100}

_JSON: Final = "application/json;charset=utf-8"
_BAD_GATEWAY_PAGE: Final = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
#: query parameters whose values never reach a log line
_SECRET_IN_QUERY: Final = re.compile(r"(?i)((?:access_token|client_secret|refresh_token)=)[^&]*")


class _DropConnection(Exception):
    """Close the client's connection without any answer."""


def _redact(query: str) -> str:
    return _SECRET_IN_QUERY.sub(r"\1***", query)


def _new_log_id() -> int:
    return secrets.randbits(40) + 1_000_000_000


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type=_JSON)


def _api_error(
    code: int, message: str | None = None, cont_sign: str | None = None, status: int = 200
) -> Response:
    body: dict[str, object] = {"log_id": _new_log_id(), "error_code": code}
    if cont_sign is not None:
        body["cont_sign"] = cont_sign  # 216681 names the existing item, as the API does
    body["error_msg"] = message or error_message(code)
    return _json(body, status)


def _api_refusal(refused: Refused) -> tuple[list[tuple[str, str]], bytes]:
    """Waitress's own refusals (a body over its limit, a malformed request), answered in
    the API's JSON shape instead of waitress's plain text; the connection then closes."""
    code = _REFUSAL_CODES.get(refused.code, 282000)
    body = json.dumps(
        {"log_id": _new_log_id(), "error_code": code, "error_msg": error_message(code)}
    ).encode()
    logger.debug("request refused unread: HTTP %d -> error %d", refused.code, code)
    return [("Content-Type", _JSON)], body


class GalleryApp:
    """The WSGI application of the local gallery.

    ``faults`` may be replaced or changed field by field while requests are served.
    """

    def __init__(
        self,
        store: GalleryStore,
        api_key: str = "",
        secret_key: str = "",
        delete_latency: float = 0.0,
        faults: FaultConfig | None = None,
        token_scope: str = DEFAULT_TOKEN_SCOPE,
        stopping: threading.Event | None = None,
        url_timeout: float = URL_TIMEOUT,
    ) -> None:
        self.faults = faults if faults is not None else FaultConfig()
        self.galleries = Galleries(store, delete_latency)
        self.auth = Authenticator(
            store, api_key, secret_key, lambda: self.faults.token_lifetime, token_scope
        )
        self.operations = Operations(self.galleries, url_timeout)
        self._injector = FaultInjector(lambda: self.faults)
        self._stopping = stopping if stopping is not None else threading.Event()
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._counts_lock = threading.Lock()
        rules = [Rule(TOKEN_PATH, endpoint="token")]
        for gallery in GALLERIES.values():
            for op in OPERATIONS:
                rules.append(Rule(gallery.path(op), endpoint=f"api/{gallery.name}/{op}"))
        for extension in ("health", "calls", "items"):
            rules.append(Rule(f"/_syncd/{extension}", endpoint=f"syncd/{extension}"))
        self._routes = Map(rules, strict_slashes=False, merge_slashes=False)

    def call_counts(self) -> dict[tuple[str, str], int]:
        """(gallery, op) -> API calls received since start or reset, whatever the answer."""
        with self._counts_lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        """Start counting API calls from zero."""
        with self._counts_lock:
            self._counts.clear()

    def __call__(self, environ: dict[str, object], start_response: object) -> Iterable[bytes]:
        started = time.monotonic()
        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        request.max_form_memory_size = MAX_BODY_BYTES
        outcome = "ok"
        try:
            response, outcome = self._dispatch(request)
        except _DropConnection:
            logger.debug("%s %s -> connection dropped (injected)", request.method, request.path)
            # waitress closes the socket without writing anything when the app raises this
            raise ClientDisconnected("injected dropped connection") from None
        except Exception:
            logger.exception("internal error serving %s %s", request.method, request.path)
            response, outcome = _api_error(282000), "error 282000"
        query = request.query_string.decode("latin-1")
        logger.debug(
            "%s %s%s -> %d %s in %.1f ms",
            request.method,
            request.path,
            f"?{_redact(query)}" if query else "",
            response.status_code,
            outcome,
            (time.monotonic() - started) * 1000.0,
        )
        return response(environ, start_response)  # type: ignore[arg-type]

    def _dispatch(self, request: Request) -> tuple[Response, str]:
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _api_error(216202, status=413), "error 216202 (body too large)"
        try:
            endpoint, _ = self._routes.bind_to_environ(request.environ).match()
        except HTTPException:
            return _api_error(3), "error 3"
        kind, _, rest = str(endpoint).partition("/")
        if kind == "token":
            return self._token(request)
        if kind == "syncd":
            return self._extension(request, rest)
        name, _, op = rest.partition("/")
        return self._api_call(request, name, op)  # type: ignore[arg-type]

    def _token(self, request: Request) -> tuple[Response, str]:
        if request.method not in ("GET", "POST"):
            return _api_error(3), "error 3"
        params = {key: request.args[key] for key in request.args}
        if request.method == "POST":
            params.update({key: request.form[key] for key in request.form})
        answer = self.auth.issue_token(params)
        return _json(answer.body, answer.status), "token" if answer.status == 200 else "refused"

    def _extension(self, request: Request, what: str) -> tuple[Response, str]:
        if request.method != "GET":
            return _api_error(3), "error 3"
        # the item briefs name file paths: with keys set, the API's credentials are asked
        refusal = self._authenticate(request) if self.auth.keys_set else None
        if what == "health":
            health: dict[str, object] = {"status": "ok"}  # open to liveness probes
            if refusal is None:
                health["items"] = self.galleries.live_counts()
            return _json(health), "ok"
        if refusal is not None:
            return _api_error(refusal, status=401), f"error {refusal}"
        if what == "calls":
            counts = self.call_counts()
            calls = {g: {op: counts.get((g, op), 0) for op in OPERATIONS} for g in GALLERY_NAMES}
            return _json({"calls": calls, "total": sum(counts.values())}), "ok"
        name = request.args.get("gallery", "")
        if name not in GALLERIES:
            body = {"error_code": 216100, "error_msg": "invalid param: gallery"}
            return _json(body, 400), "error 216100"
        product = GALLERIES[name].tag_style == "class_id"
        items: list[dict[str, object]] = []
        for item in self.galleries.live_items(name):
            entry: dict[str, object] = {"cont_sign": item.cont_sign, "brief": item.brief}
            if product:
                entry["class_id1"] = item.tag1 or None
                entry["class_id2"] = item.tag2 or None
            else:
                entry["tags"] = [tag for tag in (item.tag1, item.tag2) if tag]
            items.append(entry)
        return _json({"gallery": name, "items": items}), "ok"

    def _authenticate(self, request: Request) -> int | None:
        token = request.args.get("access_token")
        if token is not None:
            return self.auth.check_token(token)
        authorization = request.headers.get("authorization")
        if authorization is None:
            return 110
        headers = {key.lower(): value for key, value in request.headers.items()}
        path = request.environ.get("PATH_INFO", "")
        valid = self.auth.check_signature(
            authorization,
            request.method,
            str(path).encode("latin-1", "replace"),
            request.query_string.decode("latin-1"),
            headers,
        )
        return None if valid else 14

    def _api_call(self, request: Request, name: str, op: Operation) -> tuple[Response, str]:
        with self._counts_lock:
            self._counts[(name, op)] += 1
        faults = self.faults
        if faults.latency > 0:
            self._stopping.wait(faults.latency)
        if request.method != "POST":
            return _api_error(3), "error 3"
        refusal = self._authenticate(request) or self._injector.admit()
        if refusal is not None:
            return _api_error(refusal), f"error {refusal}"
        fault = self._injector.transient()
        if fault is TransientFault.DROPPED_CONNECTION:
            raise _DropConnection
        if fault is TransientFault.BAD_GATEWAY:
            return Response(_BAD_GATEWAY_PAGE, status=502, content_type="text/html"), "HTTP 502"
        if fault is not None and fault.error_code is not None:
            return _api_error(fault.error_code), f"error {fault.error_code} (injected)"
        if name in faults.not_initialized:
            return _api_error(216017), "error 216017"
        try:
            params = form_params(request)
        except HTTPException:  # body over MAX_BODY_BYTES: it can only be the image
            return _api_error(216202, status=413), "error 216202"
        try:
            result = self.operations.run(GALLERIES[name], op, params)  # type: ignore[index]
        except ApiError as refused:
            existing = refused.cont_sign if isinstance(refused, ItemExistsError) else None
            if faults.anonymous_exists:
                existing = None
            return _api_error(refused.code, refused.message, existing), f"error {refused.code}"
        if op == "add" and self._injector.lose_answer():
            raise _DropConnection
        return _json({"log_id": _new_log_id(), **result}), "ok"


class GalleryServer:
    """The local gallery served by waitress on a background thread.

    ``port`` 0 picks a free port; ``url`` is known once started. ``token_scope`` is the
    ``scope`` of issued tokens: without ``brain_all_scope`` the official SDK signs its
    calls with bce-auth-v1 instead of sending the token. ``url_timeout`` is the seconds
    a ``url`` input may take to download. ``delete_latency`` is the seconds a deleted
    item stays searchable and blocks a re-add of its image. ``connection_limit`` is the
    connections open at once, ``channel_timeout`` the whole seconds a connection may
    stay silent (see CONNECTION_LIMIT, CHANNEL_TIMEOUT, THREADS).
    """

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "",
        secret_key: str = "",
        delete_latency: float = 0.0,
        faults: FaultConfig | None = None,
        threads: int = THREADS,
        token_scope: str = DEFAULT_TOKEN_SCOPE,
        url_timeout: float = URL_TIMEOUT,
        connection_limit: int = CONNECTION_LIMIT,
        channel_timeout: int = CHANNEL_TIMEOUT,
    ) -> None:
        if threads < 1 or connection_limit < 1 or channel_timeout < 1:
            raise ValueError("threads, connection_limit and channel_timeout must be >= 1")
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.threads = threads
        self.connection_limit = connection_limit
        self.channel_timeout = channel_timeout
        self._api_key = api_key
        self._secret_key = secret_key
        self._delete_latency = delete_latency
        self._initial_faults = faults if faults is not None else FaultConfig()
        self._token_scope = token_scope
        self._url_timeout = url_timeout
        self._stopping = threading.Event()
        self._store: GalleryStore | None = None
        self._app: GalleryApp | None = None
        self._server: WaitressServer | None = None
        self._url = ""
        self._token = ""
        self._token_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GalleryServer(url={self._url!r}, data_dir={str(self.data_dir)!r})"

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if not self._url:
            raise RuntimeError("the gallery server is not started")
        return self._url

    @property
    def faults(self) -> FaultConfig:
        """The fault configuration in force (change its fields, or assign a new one)."""
        return self._app.faults if self._app is not None else self._initial_faults

    @faults.setter
    def faults(self, value: FaultConfig) -> None:
        self._initial_faults = value
        if self._app is not None:
            self._app.faults = value

    @property
    def app(self) -> GalleryApp:
        """The WSGI application (to mount it elsewhere, or to inspect its state)."""
        if self._app is None:
            raise RuntimeError("the gallery server is not started")
        return self._app

    def access_token(self) -> str:
        """An access token for this server's own keys, as ``/oauth/2.0/token`` issues it
        (reused while valid): for callers of the ``/_syncd/`` extensions in this process,
        which send it as the ``access_token`` query parameter."""
        auth = self.app.auth
        with self._token_lock:
            if not self._token or auth.check_token(self._token) is not None:
                answer = auth.issue_token(
                    {
                        "grant_type": "client_credentials",
                        "client_id": self._api_key or "syncd",
                        "client_secret": self._secret_key,
                    }
                )
                self._token = str(answer.body["access_token"])
            return self._token

    def start(self) -> None:
        """Open the store, listen, and serve on a background thread; returns once listening."""
        if self._server is not None:
            raise RuntimeError("the gallery server is already started")
        self._stopping.clear()
        self._store = GalleryStore(self.data_dir)
        self._app = GalleryApp(
            self._store,
            api_key=self._api_key,
            secret_key=self._secret_key,
            delete_latency=self._delete_latency,
            faults=self._initial_faults,
            token_scope=self._token_scope,
            stopping=self._stopping,
            url_timeout=self._url_timeout,
        )
        server = self._server = WaitressServer(
            self._app,
            host=self.host,
            port=self.port,
            name="syncd-gallery",
            threads=self.threads,
            connection_limit=self.connection_limit,
            channel_timeout=self.channel_timeout,
            # a silent connection closes between channel_timeout and 7/6 of it
            cleanup_interval=max(1, self.channel_timeout // 6),
            # the app answers a body over MAX_BODY_BYTES itself; beyond this, waitress
            # stops reading and _api_refusal answers the same
            max_request_body_size=MAX_BODY_BYTES + 1024 * 1024,
            refusal=_api_refusal,
        )
        self.port = server.port
        self._url = server.url
        server.start()

    def stop(self) -> None:
        """Stop serving (in-flight calls finish, up to 5 s), close connections and store."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.stop()
        self._server = None
        if self._app is not None:
            self._app.galleries.close()
        if self._store is not None:
            self._store.close()

    def call_counts(self) -> dict[tuple[str, str], int]:
        """(gallery, op) -> API calls received since start or reset_counts(), any answer."""
        return self.app.call_counts()

    def reset_counts(self) -> None:
        """Start counting API calls from zero."""
        self.app.reset_counts()

    def __enter__(self) -> GalleryServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    data_dir: Path,
    host: str,
    port: int,
    api_key: str,
    secret_key: str,
    delete_latency: float,
    threads: int | None = None,
    connection_limit: int | None = None,
    channel_timeout: int | None = None,
) -> None:
    """Serve the local gallery until SIGTERM or SIGINT, then stop cleanly and return.

    ``threads``, ``connection_limit`` and ``channel_timeout`` (seconds) left None take
    THREADS, CONNECTION_LIMIT and CHANNEL_TIMEOUT.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = GalleryServer(
        data_dir,
        host=host,
        port=port,
        api_key=api_key,
        secret_key=secret_key,
        delete_latency=delete_latency,
        threads=threads or THREADS,
        connection_limit=connection_limit or CONNECTION_LIMIT,
        channel_timeout=channel_timeout or CHANNEL_TIMEOUT,
    )
    try:
        server.start()
        logger.info("local gallery serving at %s, data in %s", server.url, data_dir)
        while not stop.wait(1.0):
            pass
        logger.info("local gallery stopping")
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
