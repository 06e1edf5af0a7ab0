"""The failures page and retry (``syncd retry`` for one file, a library, or all), from
its form and from ``/api/retry``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from werkzeug.wrappers import Request, Response

from syncd.app.browse import failures as failed_files
from syncd.console.context import Console
from syncd.console.text import counted
from syncd.console.views import Handler
from syncd.console.web import Access, Refused, json_response, redirect

#: failed files listed on the page at most
PAGE_ROWS: Final = 500


def failures(console: Console, request: Request, access: Access) -> Response:
    library = request.args.get("library") or None
    if library is not None and console.library(library) is None:
        raise Refused(404, "no such library in the config")
    return console.pages.page(
        "failures.html",
        access=access,
        failures=failed_files(console.reader, library, PAGE_ROWS),
        library=library,
        page="failures",
    )


def failures_retry(console: Console, request: Request, access: Access) -> Response:
    result = _retry(console, request.form)
    if access.session is not None:
        access.session.flash.append(_retry_line(result))
    return redirect("/failures")


def api_retry(console: Console, request: Request, access: Access) -> Response:
    fields: dict[str, str] = dict(request.form.items())
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise Refused(400, "expected a JSON object")
        fields = {k: str(v) for k, v in body.items() if v is not None}
    result = _retry(console, fields)
    return json_response(
        {
            "items": result.items,
            "files": result.files,
            "waiting": result.waiting,
            "lifted": result.lifted,
        }
    )


def _retry(console: Console, fields: Any) -> Any:
    """``syncd retry`` for one file (``file``: its id), a ``library``, or all."""
    from syncd.app.errors import ConfigError, LedgerError
    from syncd.app.retry import retry_failures

    raw_id = fields.get("file")
    library = fields.get("library") or None
    names: list[str] = []
    paths: list[Path] = []
    if raw_id:
        location, lib = console.located(str(raw_id))
        names, paths = [lib.name], [Path(os.path.abspath(lib.root)) / location.relpath]
    elif library is not None:
        if console.library(library) is None:
            raise Refused(404, "no such library in the config")
        names = [library]
    try:
        return retry_failures(console.config, names, paths)
    except (ConfigError, LedgerError) as exc:
        raise Refused(409, str(exc).splitlines()[0]) from None


def _retry_line(result: Any) -> str:
    line = (
        f"queued again: {counted(result.items, 'failed item')}, "
        f"{counted(result.waiting, 'item')} waiting to retry after errors, "
        f"{counted(result.files, 'refused file')} to read again"
    )
    for what in result.lifted:
        line += f"; lifted {what}"
    return line


HANDLERS: dict[str, Handler] = {
    "failures": failures,
    "failures_retry": failures_retry,
    "api_retry": api_retry,
}
