"""What every part of the console answers with: a refusal, how a request got in, pages
rendered from the templates, JSON, redirects, and the security headers of every answer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from werkzeug.wrappers import Request, Response

from syncd.console.security import SECURITY_HEADERS, ConsoleSession
from syncd.console.text import absolute_time, counted, epoch_of, rate_text, relative_time
from syncd.paths.relpath import printable_relpath

PACKAGE_DIR: Final = Path(__file__).resolve().parent
TEMPLATES_DIR: Final = PACKAGE_DIR / "templates"
STATIC_DIR: Final = PACKAGE_DIR / "static"
#: largest request body, bytes: an image to search with (the API takes 4 MiB of base64)
MAX_UPLOAD_BYTES: Final = 16 * 1024 * 1024
#: the reason a larger body is refused with (413)
TOO_LARGE: Final = f"the request body is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB"


class Refused(Exception):
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


class Pages:
    """The console's HTML pages, rendered from its templates with what every page shows
    (the CSRF token, the flash lines, the mode, the libraries)."""

    def __init__(self, open_mode: bool, libraries: list[str]) -> None:
        self.open_mode = open_mode
        self.libraries = libraries
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
        self.jinja.filters["rate"] = rate_text

    def page(self, template: str, code: int = 200, **values: Any) -> Response:
        """``template`` rendered with ``values``; ``access`` (when given) is whose page it
        is: its CSRF token goes in, its flash lines are shown once."""
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
            libraries=self.libraries,
            **values,
        )
        response = Response(body, code, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    def refusal(self, path: str, refused: Refused) -> Response:
        """The answer to a refused request: JSON for the API, the login page for 401, else
        the error page."""
        wants_json = path.startswith("/api/") or path == "/search/hits"
        if wants_json:
            response = json_response({"error": refused.reason}, refused.status)
        elif refused.status == 401:
            response = self.page("login.html", code=401, error="")
        else:
            response = self.page("error.html", code=refused.status, reason=refused.reason)
        if refused.status == 401 and wants_json:
            response.headers["WWW-Authenticate"] = 'Bearer realm="syncd console"'
        for name, value in refused.headers.items():
            response.headers[name] = value
        response.headers["Cache-Control"] = "no-store"
        return response


def json_response(data: object, status: int = 200) -> Response:
    """``data`` as JSON, never cached."""
    response = Response(json.dumps(data, ensure_ascii=False), status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(where: str) -> Response:
    """303 to ``where`` (after a form's POST)."""
    return Response("", 303, headers={"Location": where})


def secured(response: Response) -> Response:
    """``response`` with the security headers every answer carries."""
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    return response


def path_arg(request: Request, name: str) -> str:
    """A value the route matched in the request's path."""
    return str(request.environ.get("syncd.console.args", {}).get(name, ""))


def parse_id(raw: str) -> int:
    """A file id from a request: decimal digits only, within SQLite's integer range."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Refused(400, "bad file id")
    return int(raw)


def _printable(value: object) -> object:
    """What a page shows of a value: text with bytes that are not UTF-8 (a file name from
    an old share) as \\xNN escapes, never an error when the page is encoded."""
    if isinstance(value, str) and not isinstance(value, Markup):  # a macro's markup stays
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value
