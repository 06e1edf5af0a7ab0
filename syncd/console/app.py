"""The console's WSGI application: pages, the JSON API, thumbnails and static files.

Each request reads the ledger in one short read transaction (or none); the two writes
(retry, release) are the commands' own, in a transaction of their own. Every answer carries
the security headers; an error is a short 4xx/5xx page or JSON, never a traceback.
"""

from __future__ import annotations

import json
import logging
import math
import mimetypes
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from syncd.config import Config, LibraryConfig
from syncd.console.security import (
    COOKIE_NAME,
    SECURITY_HEADERS,
    ConsoleSession,
    LoginLimiter,
    SessionTable,
    host_refusal,
    password_matches,
    token_matches,
)
from syncd.console.text import absolute_time, counted, epoch_of, relative_time
from syncd.console.thumbs import NotAnImage, NoThumbnail, ThumbnailCache
from syncd.ledger.browse import FileLocation
from syncd.paths import printable_relpath

log = logging.getLogger("syncd.console")

PACKAGE_DIR: Final = Path(__file__).resolve().parent
TEMPLATES_DIR: Final = PACKAGE_DIR / "templates"
STATIC_DIR: Final = PACKAGE_DIR / "static"
#: largest request body, bytes: an image to search with (the API takes 4 MiB of base64)
MAX_UPLOAD_BYTES: Final = 16 * 1024 * 1024
#: the reason a larger body is refused with (413)
TOO_LARGE: Final = f"the request body is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB"
#: files and paths listed on a page at most
PAGE_ROWS: Final = 500
#: minutes of the calls chart
CHART_MINUTES: Final = 60
#: what may be fetched without logging in: the login page and its style
_PUBLIC: Final = {"login", "static_public"}
_PUBLIC_STATIC: Final = {"console.css", "common.js"}


class _Refused(Exception):
    """A request refused with ``status`` and a one-line reason."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


@dataclass(frozen=True)
class Access:
    """How a request got in: with a browser session, a bearer password, or the open mode."""

    session: ConsoleSession | None
    bearer: bool = False


class ConsoleApp:
    """The web console of ``config`` (its [console] section and the ledger it names)."""

    def __init__(self, config: Config) -> None:
        from syncd.ledger.browse import LedgerReader

        self.config = config
        self.open_mode = not config.console.password
        #: where the server listens (host, port), for the Host check; set by listening_on
        self.listen: tuple[str, int] = ("", 0)
        self.reader = LedgerReader(config.ledger)
        #: whether the sync runs in this process (``syncd run``), so its calls are recorded
        #: here; ``syncd console`` alone sets it False
        self.beside_sync = True
        self.sessions = SessionTable()
        self.limiter = LoginLimiter()
        self.thumbs = ThumbnailCache()
        self.status_cache = StatusCache(self.read_status_document)
        self.static = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
        self.jinja = Environment(
            loader=FileSystemLoader(str(TEMPLATES_DIR)),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=_printable,
        )
        self.jinja.filters["path"] = printable_relpath
        self.jinja.filters["utc"] = absolute_time
        self.jinja.filters["ago"] = lambda value: relative_time(value, time.time())
        self.jinja.filters["counted"] = counted
        self.jinja.filters["epoch"] = epoch_of
        self.routes = Map(
            [
                Rule("/", endpoint="overview", methods=["GET"]),
                Rule("/login", endpoint="login", methods=["GET", "POST"]),
                Rule("/logout", endpoint="logout", methods=["POST"]),
                Rule("/failures", endpoint="failures", methods=["GET"]),
                Rule("/failures/retry", endpoint="failures_retry", methods=["POST"]),
                Rule("/held", endpoint="held", methods=["GET"]),
                Rule("/held/confirm", endpoint="held_confirm", methods=["GET"]),
                Rule("/held/release", endpoint="held_release", methods=["POST"]),
                Rule("/search", endpoint="search", methods=["GET"]),
                Rule("/activity", endpoint="activity", methods=["GET"]),
                Rule("/search/hits", endpoint="search_hits", methods=["POST"]),
                Rule("/thumb/<path:raw>", endpoint="thumb", methods=["GET"]),
                Rule("/static/<path:name>", endpoint="static", methods=["GET"]),
                Rule("/api/status", endpoint="api_status", methods=["GET"]),
                Rule("/api/calls", endpoint="api_calls", methods=["GET"]),
                Rule("/api/activity", endpoint="api_activity", methods=["GET"]),
                Rule("/api/search", endpoint="api_search", methods=["POST"]),
                Rule("/api/retry", endpoint="api_retry", methods=["POST"]),
            ],
            strict_slashes=False,
            merge_slashes=False,
        )
        self._handlers: dict[str, Callable[[Request, Access], Response]] = {
            "overview": self._overview,
            "logout": self._logout,
            "failures": self._failures,
            "failures_retry": self._failures_retry,
            "held": self._held,
            "held_confirm": self._held_confirm,
            "held_release": self._held_release,
            "search": self._search_page,
            "activity": self._activity,
            "search_hits": self._search_hits,
            "thumb": self._thumb,
            "static": self._static,
            "api_status": self._api_status,
            "api_calls": self._api_calls,
            "api_activity": self._api_activity,
            "api_search": self._api_search,
            "api_retry": self._api_retry,
        }

    def listening_on(self, host: str, port: int) -> None:
        """Tell the app the address its server listens on (``host`` without brackets)."""
        self.listen = (host, port)

    def close(self) -> None:
        """Release the ledger connections (after a background refresh in progress)."""
        self.status_cache.close()
        self.reader.close()

    # -- the WSGI entry -----------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_UPLOAD_BYTES
        request.max_form_memory_size = 64 * 1024
        try:
            response = self._dispatch(request)
        except _Refused as refused:
            response = self._refusal(request.path, refused)
        except HTTPException as exc:
            response = self._refusal(
                request.path,
                _Refused(exc.code or 400, exc.name.lower() if exc.name else "bad request"),
            )
        except Exception:  # a page must not take the daemon down, nor show a traceback
            log.exception("console: %s %s failed", request.method, request.path)
            response = self._refusal(request.path, _Refused(500, "internal error (see the log)"))
        return _secured(response)(environ, start_response)

    def server_refusal(self, path: str, status: int, reason: str) -> Response:
        """The answer to a request the HTTP server refused before the app saw it (a body over
        the limit, a malformed request): the console's error page, or JSON for the API, with
        the security headers of every answer."""
        return _secured(self._refusal(path, _Refused(status, reason)))

    def _dispatch(self, request: Request) -> Response:
        if self.open_mode:
            self._check_host(request)
        if (request.content_length or 0) > MAX_UPLOAD_BYTES:
            raise _Refused(413, TOO_LARGE)
        adapter = self.routes.bind_to_environ(request.environ)
        endpoint, args = adapter.match()
        request.environ["syncd.console.args"] = args
        if endpoint == "login":
            return self._login(request)
        if endpoint == "static" and args.get("name") in _PUBLIC_STATIC:
            return self._static(request, Access(None))
        access = self._access(request)
        if access is None:
            raise _Refused(401, "log in first")
        if request.method == "POST":
            self._check_csrf(request, access)
        response = self._handlers[endpoint](request, access)
        if access.session is not None and request.cookies.get(COOKIE_NAME) != access.session.token:
            self._set_cookie(request, response, access.session.token)
        return response

    def _check_host(self, request: Request) -> None:
        # without a password only this machine may come in: a DNS name rebound to 127.0.0.1
        # by a web page must not reach the console
        reason = host_refusal(request.environ.get("HTTP_HOST", ""), *self.listen)
        if reason:
            raise _Refused(421, reason)

    def _access(self, request: Request) -> Access | None:
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer " and password_matches(
            auth[7:].strip(), self.config.console.password
        ):
            return Access(None, bearer=True)
        session = self.sessions.get(request.cookies.get(COOKIE_NAME))
        if session is not None:
            return Access(session)
        if self.open_mode:
            # a browser gets a session (and its CSRF token); a script on this host needs none
            browser = request.method == "GET" and "text/html" in request.headers.get("Accept", "")
            return Access(self.sessions.create() if browser else None)
        return None

    def _check_csrf(self, request: Request, access: Access) -> None:
        if access.bearer:
            return  # a password in a header is not something a browser sends on its own
        if access.session is None:
            # the open mode's scripts: refuse what a browser sent from another site
            if request.headers.get("Origin") or request.headers.get("Sec-Fetch-Site") not in (
                None,
                "same-origin",
                "none",
            ):
                raise _Refused(403, "missing CSRF token")
            return
        given = request.headers.get("X-CSRF-Token") or request.form.get("csrf")
        if not token_matches(given, access.session.csrf):
            raise _Refused(403, "missing or wrong CSRF token: reload the page")

    def _set_cookie(self, request: Request, response: Response, token: str) -> None:
        secure = request.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https"
        response.set_cookie(
            COOKIE_NAME, token, httponly=True, samesite="Strict", secure=secure, path="/"
        )

    def _refusal(self, path: str, refused: _Refused) -> Response:
        wants_json = path.startswith("/api/") or path == "/search/hits"
        if wants_json:
            response = Response(
                json.dumps({"error": refused.reason}), refused.status, mimetype="application/json"
            )
        elif refused.status == 401:
            response = self._page("login.html", code=401, error="")
        else:
            response = self._page(
                "error.html", code=refused.status, reason=refused.reason, access=None
            )
        if refused.status == 401 and wants_json:
            response.headers["WWW-Authenticate"] = 'Bearer realm="syncd console"'
        for name, value in refused.headers.items():
            response.headers[name] = value
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- rendering ----------------------------------------------------------------------

    def _page(self, template: str, code: int = 200, **values: Any) -> Response:
        access: Access | None = values.pop("access", None)
        session = access.session if access is not None else None
        flash: list[str] = []
        if session is not None:
            flash, session.flash = session.flash, []
        body = self.jinja.get_template(template).render(
            csrf=session.csrf if session is not None else "",
            flash=flash,
            open_mode=self.open_mode,
            logged_in=session is not None and not self.open_mode,
            libraries=[lib.name for lib in self.config.libraries],
            **values,
        )
        response = Response(body, code, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def _json(data: object, status: int = 200) -> Response:
        response = Response(
            json.dumps(data, ensure_ascii=False), status, mimetype="application/json"
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def _redirect(where: str) -> Response:
        return Response("", 303, headers={"Location": where})

    # -- login --------------------------------------------------------------------------

    def _login(self, request: Request) -> Response:
        if self.open_mode:
            return self._redirect("/")
        if request.method == "GET":
            return self._page("login.html", error="")
        client = request.remote_addr or "?"
        wait = self.limiter.retry_after(client)
        if wait > 0:
            response = self._page(
                "login.html", code=429, error="too many failed logins: try again in a minute"
            )
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        if not password_matches(request.form.get("password", ""), self.config.console.password):
            self.limiter.failed(client)
            log.warning("console: failed login from %s", client)
            return self._page("login.html", code=401, error="wrong password")
        session = self.sessions.create()
        response = self._redirect("/")
        self._set_cookie(request, response, session.token)
        return response

    def _logout(self, request: Request, access: Access) -> Response:
        self.sessions.drop(request.cookies.get(COOKIE_NAME))
        response = self._redirect("/login")
        response.delete_cookie(COOKIE_NAME, path="/")
        return response

    # -- overview -----------------------------------------------------------------------

    def status_document(self) -> dict[str, Any]:
        """The ``syncd status --json`` document: read now on a small ledger; on a big one
        (reading it takes more than ``StatusCache.FRESH_SECONDS``) the latest snapshot,
        refreshed in the background, so a page never waits for a million-row count. Its
        ``as_of`` says when it was read."""
        return self.status_cache.get()

    def read_status_document(self) -> dict[str, Any]:
        """The ``syncd status --json`` document, read now."""
        from syncd.health import current_health, with_health
        from syncd.ledger.report import empty_status, ledger_status, status_document
        from syncd.sync.inflight import AddSpool

        libraries = [(lib.name, lib.gallery) for lib in self.config.libraries]
        as_of = time.time()
        if self.reader.exists():
            with self.reader.reading() as session:
                report = ledger_status(
                    session, libraries, as_of,
                    qps=self.config.api.rates.rate_at(time.time()),
                    daily_budget=self.config.api.daily_budget,
                )  # fmt: skip
        else:
            report = empty_status(libraries)
        unsettled = AddSpool.for_host(self.config.ledger.path, self.config.host).count()
        healths = current_health(self.config, report.libraries, report.conditions)
        document = status_document(report, unsettled, as_of=as_of)
        document["rate"] = self.config.api.rates.document(time.time())
        return with_health(document, healths)

    def calls_chart(self) -> dict[str, Any]:
        """Calls per minute over the last ``CHART_MINUTES`` minutes, oldest first."""
        from syncd.ledger.calls import calls_per_minute

        now_minute = int(time.time() // 60)
        first = now_minute - CHART_MINUTES + 1
        counts: dict[int, int] = {}
        if self.reader.exists():
            with self.reader.reading() as session:
                counts = calls_per_minute(session, first)
        return {
            "first_minute": first,
            "calls": [counts.get(first + n, 0) for n in range(CHART_MINUTES)],
        }

    def _overview(self, request: Request, access: Access) -> Response:
        from syncd.console.activity import recent_activity

        status = self.status_document()
        return self._page(
            "overview.html",
            access=access,
            status=status,
            chart=self.calls_chart(),
            last_activity=recent_activity().last_by_library(),
            page="overview",
        )

    def _api_status(self, request: Request, access: Access) -> Response:
        return self._json(self.status_document())

    def _api_calls(self, request: Request, access: Access) -> Response:
        return self._json(self.calls_chart())

    # -- activity -----------------------------------------------------------------------

    def _activity_filters(self, request: Request) -> tuple[str | None, str | None]:
        library = request.args.get("library") or None
        if library is not None and self._library(library) is None:
            raise _Refused(404, "no such library in the config")
        from syncd.console.activity import OUTCOMES

        outcome = request.args.get("outcome") or None
        if outcome is not None and outcome not in ("ok", "error", *OUTCOMES):
            raise _Refused(400, f"outcome: expected ok, error or one of {', '.join(OUTCOMES)}")
        return library, outcome

    def _activity(self, request: Request, access: Access) -> Response:
        from syncd.console.activity import OUTCOMES, recent_activity

        library, outcome = self._activity_filters(request)
        ring = recent_activity()
        return self._page(
            "activity.html",
            access=access,
            recorded=ring.recorded and (self.beside_sync or bool(ring.calls)),
            calls=ring.matching(library, outcome),
            total=len(ring.calls),
            library=library,
            outcome=outcome,
            outcomes=OUTCOMES,
            page="activity",
        )

    def _api_activity(self, request: Request, access: Access) -> Response:
        from syncd.console.activity import recent_activity

        library, outcome = self._activity_filters(request)
        ring = recent_activity()
        return self._json(
            {
                "recorded": ring.recorded and (self.beside_sync or bool(ring.calls)),
                "calls": [call.as_dict() for call in ring.matching(library, outcome)],
                "last_by_library": ring.last_by_library(),
            }
        )

    # -- failures and retry -------------------------------------------------------------

    def _failures(self, request: Request, access: Access) -> Response:
        from syncd.ledger.browse import FailurePage, failed_files

        library = request.args.get("library") or None
        if library is not None and self._library(library) is None:
            raise _Refused(404, "no such library in the config")
        page = FailurePage(0, [])
        if self.reader.exists():
            with self.reader.reading() as session:
                page = failed_files(session, library, PAGE_ROWS)
        return self._page(
            "failures.html", access=access, failures=page, library=library, page="failures"
        )

    def _failures_retry(self, request: Request, access: Access) -> Response:
        result = self._retry(request.form)
        if access.session is not None:
            access.session.flash.append(_retry_line(result))
        return self._redirect("/failures")

    def _api_retry(self, request: Request, access: Access) -> Response:
        fields: dict[str, str] = dict(request.form.items())
        if request.is_json:
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                raise _Refused(400, "expected a JSON object")
            fields = {k: str(v) for k, v in body.items() if v is not None}
        result = self._retry(fields)
        return self._json(
            {
                "items": result.items,
                "files": result.files,
                "waiting": result.waiting,
                "lifted": result.lifted,
            }
        )

    def _retry(self, fields: Any) -> Any:
        """``syncd retry`` for one file (``file``: its id), a ``library``, or all."""
        from syncd.app.retry import retry_failures
        from syncd.errors import ConfigError
        from syncd.ledger.schema import LedgerError

        raw_id = fields.get("file")
        library = fields.get("library") or None
        names: list[str] = []
        paths: list[Path] = []
        if raw_id:
            location, lib = self._located(str(raw_id))
            names, paths = [lib.name], [Path(os.path.abspath(lib.root)) / location.relpath]
        elif library is not None:
            if self._library(library) is None:
                raise _Refused(404, "no such library in the config")
            names = [library]
        try:
            result = retry_failures(self.config, names, paths)
            self.status_cache.invalidate()
            return result
        except (ConfigError, LedgerError) as exc:
            raise _Refused(409, str(exc).splitlines()[0]) from None

    # -- held deletes -------------------------------------------------------------------

    def _held_libraries(self) -> list[Any]:
        from syncd.ledger.browse import held_deletes

        if not self.reader.exists():
            return []
        with self.reader.reading() as session:
            return held_deletes(session, PAGE_ROWS)

    def _held(self, request: Request, access: Access) -> Response:
        return self._page("held.html", access=access, held=self._held_libraries(), page="held")

    def _held_confirm(self, request: Request, access: Access) -> Response:
        name = request.args.get("library", "")
        chosen = next((h for h in self._held_libraries() if h.name == name), None)
        if chosen is None:
            raise _Refused(404, "that library has no held deletes")
        return self._page("held_confirm.html", access=access, held=chosen, page="held")

    def _held_release(self, request: Request, access: Access) -> Response:
        from syncd.ledger.browse import release_held_deletes
        from syncd.ledger.schema import LedgerError, open_ledger

        name = request.form.get("library", "")
        if not name or not self.reader.exists():
            raise _Refused(404, "that library has no held deletes")
        try:
            ledger = open_ledger(self.config.ledger, create=False)
        except LedgerError as exc:
            raise _Refused(409, str(exc).splitlines()[0]) from None
        try:
            with ledger.transaction() as session:
                released = release_held_deletes(
                    session, name, time.time(), self.config.watch.delete_grace
                )
        finally:
            ledger.close()
        self.status_cache.invalidate()
        line = (
            f"library {name}: {counted(released, 'held delete')} let go; "
            "the next sync pass deletes them"
        )
        log.warning("console: %s", line)
        if access.session is not None:
            access.session.flash.append(line)
        if access.session is None:
            return self._json({"library": name, "released": released})
        return self._redirect("/held")

    # -- search -------------------------------------------------------------------------

    def _search_page(self, request: Request, access: Access) -> Response:
        return self._page("search.html", access=access, page="search")

    def _api_search(self, request: Request, access: Access) -> Response:
        found, _ = self._search(request, with_files=False)
        return self._json([hit.as_dict() for hit in found])

    def _search_hits(self, request: Request, access: Access) -> Response:
        found, files = self._search(request, with_files=True)
        hits = []
        for hit, refs in zip(found, files, strict=True):
            entry = hit.as_dict()
            entry["files"] = refs
            hits.append(entry)
        return self._json(hits)

    def _search(self, request: Request, with_files: bool) -> tuple[list[Any], list[Any]]:
        """``syncd search`` with the uploaded ``image``; with the ids of the hits' files."""
        from syncd.app.search import search_image
        from syncd.errors import ApiError, ConfigError, SyncdError
        from syncd.scan.prepare import ImageRejected

        try:
            upload = request.files.get("image")
            library = request.form.get("library") or None
            top_text = request.form.get("top") or "10"
            min_score_text = request.form.get("min_score") or "0"
        except ValueError:
            raise _Refused(400, "not a readable multipart form") from None
        if upload is None or not upload.filename and not upload.content_length:
            raise _Refused(400, "no image: send it in the multipart field 'image'")
        if library is not None and self._library(library) is None:
            raise _Refused(400, "no such library in the config")
        if not top_text.isdigit() or not 1 <= int(top_text) <= 1000:
            raise _Refused(400, "top: expected an integer 1..1000")
        min_score = _score(min_score_text)
        with tempfile.TemporaryDirectory(prefix="syncd-console-") as folder:
            image = Path(folder) / "image"
            upload.save(str(image))
            if image.stat().st_size == 0:
                raise _Refused(400, "the image is empty")
            try:
                found = search_image(self.config, image, library, int(top_text), min_score)
            except ImageRejected as exc:
                # the reason says what is wrong ("not an image (…)"): say it once
                raise _Refused(400, f"the gallery cannot take this file: {exc.reason}") from None
            except ConfigError as exc:
                raise _Refused(409, str(exc).splitlines()[0]) from None
            except (ApiError, SyncdError) as exc:
                raise _Refused(502, f"search failed: {str(exc).splitlines()[0]}") from None
        files: list[Any] = []
        if with_files:
            files = self._files_of(found, library)
        return found, files

    def _files_of(self, found: list[Any], library: str | None) -> list[list[dict[str, Any]]]:
        from syncd.ledger.browse import files_of_item

        names = [library] if library else [lib.name for lib in self.config.libraries]
        if not self.reader.exists():
            return [[] for _ in found]
        out = []
        with self.reader.reading() as session:
            for hit in found:
                refs = files_of_item(session, hit.gallery, hit.cont_sign, names)
                out.append(
                    [
                        {
                            "id": ref.id,
                            "library": ref.library,
                            "path": printable_relpath(self._shown_path(ref)),
                        }
                        for ref in refs
                    ]
                )
        return out

    def _shown_path(self, ref: Any) -> str:
        lib = self._library(ref.library)
        return str(Path(os.path.abspath(lib.root)) / ref.relpath) if lib else ref.relpath

    # -- thumbnails and static files ----------------------------------------------------

    def _thumb(self, request: Request, access: Access) -> Response:
        location, lib = self._located(_arg(request, "raw"))
        etag = ThumbnailCache.etag_of(location)
        if etag in request.headers.get("If-None-Match", ""):
            response = Response(status=304)
        else:
            try:
                thumb = self.thumbs.get(location, lib.root)
            except NotAnImage:
                response = self._static(request, Access(None), "no-preview.svg")
                response.headers["X-Syncd-Preview"] = "none"
                return response
            except NoThumbnail as exc:
                raise _Refused(404, f"no preview: {exc}") from None
            response = Response(thumb.data, mimetype="image/jpeg")
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    def _static(self, request: Request, access: Access, name: str = "") -> Response:
        name = name or _arg(request, "name")
        path = self.static.get(name)  # only the files shipped in the package, by name
        if path is None:
            raise NotFound()
        data = path.read_bytes()
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = Response(data, mimetype=mimetype)
        response.headers["Cache-Control"] = "no-cache"
        response.set_etag(f"{len(data)}-{int(path.stat().st_mtime)}")
        return response.make_conditional(request)

    # -- helpers ------------------------------------------------------------------------

    def _located(self, raw_id: str) -> tuple[FileLocation, LibraryConfig]:
        """The live file of the id a request gave, and its library in this host's config;
        400 for an id that is not one, 404 for a file the ledger or this host lacks."""
        from syncd.ledger.browse import file_by_id

        file_id = _parse_id(raw_id)
        location = None
        if self.reader.exists():
            with self.reader.reading() as session:
                location = file_by_id(session, file_id)
        lib = self._library(location.library) if location is not None else None
        if location is None or lib is None:
            raise _Refused(404, "no such file on this host")
        return location, lib

    def _library(self, name: str) -> LibraryConfig | None:
        return next((lib for lib in self.config.libraries if lib.name == name), None)


class StatusCache:
    """The status document, read again on each request while that is quick; once a read
    takes longer than ``FRESH_SECONDS`` (a ledger of a million files), requests get the
    latest snapshot and a background thread reads a new one when it is older than
    ``REFRESH_FACTOR`` times the last read (at least ``MIN_AGE`` seconds): the console
    answers at once and spends at most a small share of a core on counting."""

    FRESH_SECONDS: Final = 0.05
    REFRESH_FACTOR: Final = 5.0
    MIN_AGE: Final = 5.0

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._snapshot: dict[str, Any] | None = None
        self._taken_at = 0.0
        self._cost = 0.0
        self._refreshing: threading.Thread | None = None

    def get(self) -> dict[str, Any]:
        """The document: fresh, or the latest snapshot while a new one is read."""
        with self._lock:
            snapshot, cost, age = self._snapshot, self._cost, time.monotonic() - self._taken_at
            if snapshot is not None and cost > self.FRESH_SECONDS:
                if age > max(self.MIN_AGE, self.REFRESH_FACTOR * cost) and self._refreshing is None:
                    self._refreshing = threading.Thread(
                        target=self._refresh, name="syncd-console-status", daemon=True
                    )
                    self._refreshing.start()
                return snapshot
        return self._take()

    def warm_up(self) -> None:
        """Read once in the background (a console just started), so the first request
        finds the modules imported and the ledger's pages cached. That read is not kept:
        the service may change the ledger a lot while it starts, and the first answer must
        be what the ledger holds when it is asked."""
        with self._lock:
            if self._refreshing is None:
                self._refreshing = threading.Thread(
                    target=self._refresh, args=(False,), name="syncd-console-status", daemon=True
                )
                self._refreshing.start()

    def _take(self) -> dict[str, Any]:
        started = time.monotonic()
        document = self._read()
        now = time.monotonic()
        with self._lock:
            self._snapshot, self._taken_at, self._cost = document, now, now - started
        return document

    def _refresh(self, keep: bool = True) -> None:
        try:
            if keep:
                self._take()
            else:
                self._read()
        except Exception:  # the next request tries again; the page keeps the last snapshot
            log.exception("console: reading the status failed")
        finally:
            with self._lock:
                self._refreshing = None

    def invalidate(self) -> None:
        """Something changed the ledger here (retry, release): the next request reads anew
        (in the background when reads are slow)."""
        with self._lock:
            self._taken_at = -math.inf

    def close(self) -> None:
        """Wait for a background read in progress."""
        with self._lock:
            thread = self._refreshing
        if thread is not None:
            thread.join()


def _secured(response: Response) -> Response:
    """``response`` with the security headers every answer carries."""
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    return response


def _printable(value: object) -> object:
    """What a page shows of a value: text with bytes that are not UTF-8 (a file name from
    an old share) as \\xNN escapes, never an error when the page is encoded."""
    if isinstance(value, str) and not isinstance(value, Markup):  # a macro's markup stays
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def _arg(request: Request, name: str) -> str:
    """A value the route matched in the request's path."""
    return str(request.environ.get("syncd.console.args", {}).get(name, ""))


def _score(raw: str) -> float:
    """A search's ``min_score``: a number 0..1; any other is refused with 400."""
    try:
        score = float(raw)
    except ValueError:
        score = -1.0
    if not 0.0 <= score <= 1.0:  # NaN too
        raise _Refused(400, "min_score: expected a number 0..1")
    return score


def _parse_id(raw: str) -> int:
    """A file id from a request: decimal digits only, within SQLite's integer range."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise _Refused(400, "bad file id")
    return int(raw)


def _retry_line(result: Any) -> str:
    line = (
        f"queued again: {counted(result.items, 'failed item')}, "
        f"{counted(result.waiting, 'item')} waiting to retry after errors, "
        f"{counted(result.files, 'refused file')} to read again"
    )
    for what in result.lifted:
        line += f"; lifted {what}"
    return line
