"""The activity page and ``/api/activity``: the calls this process's sync made lately,
filtered by library and outcome. ``/api/activity?limit=N`` lists at most N calls (0: none,
only each library's last call time, what the overview polls for)."""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from syncd.console.activity import ACTIVITY_ROWS, OUTCOMES, ActivityLog, recent_activity
from syncd.console.context import Console
from syncd.console.views import Handler
from syncd.console.web import Access, Refused, json_response


def _filters(console: Console, request: Request) -> tuple[str | None, str | None]:
    library = request.args.get("library") or None
    if library is not None and console.library(library) is None:
        raise Refused(404, "no such library in the config")
    outcome = request.args.get("outcome") or None
    if outcome is not None and outcome not in ("ok", "error", *OUTCOMES):
        raise Refused(400, f"outcome: expected ok, error or one of {', '.join(OUTCOMES)}")
    return library, outcome


def _limit(request: Request) -> int:
    raw = request.args.get("limit")
    if raw is None:
        return ACTIVITY_ROWS
    if not raw.isascii() or not raw.isdigit() or int(raw) > ACTIVITY_ROWS:
        raise Refused(400, f"limit: expected an integer 0..{ACTIVITY_ROWS}")
    return int(raw)


def _recorded(console: Console, ring: ActivityLog) -> bool:
    return ring.recorded and (console.beside_sync or bool(ring.calls))


def activity(console: Console, request: Request, access: Access) -> Response:
    library, outcome = _filters(console, request)
    ring = recent_activity()
    return console.pages.page(
        "activity.html",
        access=access,
        recorded=_recorded(console, ring),
        calls=ring.matching(library, outcome),
        total=len(ring.calls),
        library=library,
        outcome=outcome,
        outcomes=OUTCOMES,
        page="activity",
    )


def api_activity(console: Console, request: Request, access: Access) -> Response:
    library, outcome = _filters(console, request)
    limit = _limit(request)
    ring = recent_activity()
    return json_response(
        {
            "recorded": _recorded(console, ring),
            "calls": [call.as_dict() for call in ring.matching(library, outcome)[:limit]],
            "last_by_library": ring.last_by_library(),
        }
    )


HANDLERS: dict[str, Handler] = {"activity": activity, "api_activity": api_activity}
