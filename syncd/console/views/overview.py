"""The overview page and the JSON it refreshes from: the status document (the one of
``syncd status --json``), the calls chart, and the account's rate now and next."""

from __future__ import annotations

import time
from typing import Any, Final

from werkzeug.wrappers import Request, Response

from syncd.app.browse import calls_by_minute
from syncd.console.activity import recent_activity
from syncd.console.context import Console
from syncd.console.views import Handler
from syncd.console.web import Access, json_response

#: minutes of the calls chart
CHART_MINUTES: Final = 60


def calls_chart(console: Console) -> dict[str, Any]:
    """Calls per minute over the last ``CHART_MINUTES`` minutes, oldest first."""
    now_minute = int(time.time() // 60)
    first = now_minute - CHART_MINUTES + 1
    counts = calls_by_minute(console.reader, first)
    return {
        "first_minute": first,
        "calls": [counts.get(first + n, 0) for n in range(CHART_MINUTES)],
    }


def overview(console: Console, request: Request, access: Access) -> Response:
    return console.pages.page(
        "overview.html",
        access=access,
        status=console.read_status_document(),
        chart=calls_chart(console),
        last_activity=recent_activity().last_by_library(),
        page="overview",
    )


def api_status(console: Console, request: Request, access: Access) -> Response:
    return json_response(console.read_status_document())


def api_calls(console: Console, request: Request, access: Access) -> Response:
    return json_response(calls_chart(console))


HANDLERS: dict[str, Handler] = {
    "overview": overview,
    "api_status": api_status,
    "api_calls": api_calls,
}
