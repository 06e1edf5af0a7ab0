"""The held deletes page: the libraries whose deletes a mass vanish held, a confirmation,
and the release (the deletes go with the next sync pass)."""

from __future__ import annotations

import logging
import time
from typing import Final

from werkzeug.wrappers import Request, Response

from syncd.app.held import held_libraries, release_held
from syncd.console.context import Console
from syncd.console.text import counted
from syncd.console.views import Handler
from syncd.console.web import Access, Refused, json_response, redirect

log = logging.getLogger("syncd.console")

#: held paths listed per library at most
PAGE_ROWS: Final = 500


def held(console: Console, request: Request, access: Access) -> Response:
    return console.pages.page(
        "held.html", access=access, held=held_libraries(console.reader, PAGE_ROWS), page="held"
    )


def held_confirm(console: Console, request: Request, access: Access) -> Response:
    name = request.args.get("library", "")
    chosen = next((h for h in held_libraries(console.reader, PAGE_ROWS) if h.name == name), None)
    if chosen is None:
        raise Refused(404, "that library has no held deletes")
    return console.pages.page("held_confirm.html", access=access, held=chosen, page="held")


def held_release(console: Console, request: Request, access: Access) -> Response:
    from syncd.app.errors import LedgerError

    name = request.form.get("library", "")
    if not name or not console.reader.exists():
        raise Refused(404, "that library has no held deletes")
    try:
        released = release_held(console.config, name, time.time())
    except LedgerError as exc:
        raise Refused(409, str(exc).splitlines()[0]) from None
    line = (
        f"library {name}: {counted(released, 'held delete')} let go; "
        "the next sync pass deletes them"
    )
    log.warning("console: %s", line)
    if access.session is None:
        return json_response({"library": name, "released": released})
    access.session.flash.append(line)
    return redirect("/held")


HANDLERS: dict[str, Handler] = {
    "held": held,
    "held_confirm": held_confirm,
    "held_release": held_release,
}
