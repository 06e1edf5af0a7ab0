"""The console's URLs and the way a request reaches its handler: the Host check, the body
limit, the URL map, who gets in, the CSRF check, then the handler of the page."""

from __future__ import annotations

from typing import Final

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from syncd.console.auth import Gate
from syncd.console.context import Console
from syncd.console.views import Handler, activity, failures, files, held, overview, search
from syncd.console.web import MAX_UPLOAD_BYTES, TOO_LARGE, Access, Refused

#: static files that may be fetched without logging in: the login page's style and script
PUBLIC_STATIC: Final = {"console.css", "common.js"}

URLS: Final = Map(
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

#: the handler of every endpoint but login (the gate's own)
HANDLERS: Final[dict[str, Handler]] = {
    **overview.HANDLERS,
    **activity.HANDLERS,
    **failures.HANDLERS,
    **held.HANDLERS,
    **search.HANDLERS,
    **files.HANDLERS,
}


class Router:
    """Requests of ``console`` through ``gate`` to their handlers."""

    def __init__(self, console: Console, gate: Gate) -> None:
        self.console = console
        self.gate = gate

    def dispatch(self, request: Request) -> Response:
        """The answer to ``request``; raises Refused or werkzeug's HTTPException."""
        self.gate.check_host(request)
        if (request.content_length or 0) > MAX_UPLOAD_BYTES:
            raise Refused(413, TOO_LARGE)
        endpoint, args = URLS.bind_to_environ(request.environ).match()
        request.environ["syncd.console.args"] = args
        if endpoint == "login":
            return self.gate.login(request)
        if endpoint == "static" and args.get("name") in PUBLIC_STATIC:
            return files.static(self.console, request, Access(None))
        access = self.gate.access(request)
        if access is None:
            raise Refused(401, "log in first")
        if request.method == "POST":
            self.gate.check_csrf(request, access)
        if endpoint == "logout":
            response = self.gate.logout(request, access)
        else:
            response = HANDLERS[endpoint](self.console, request, access)
        self.gate.keep_session(request, response, access)
        return response
