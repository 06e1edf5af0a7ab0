"""The console's WSGI application: a thin object wiring the gate (who gets in,
:mod:`syncd.console.auth`), the URLs (:mod:`syncd.console.routes`) and the pages and API
(:mod:`syncd.console.views`) over what they share (:mod:`syncd.console.context`).

Each request reads the ledger in one short read transaction (or none); the writes (retry,
release) are the commands' own, through the application layer. Every answer carries the
security headers; an error is a short 4xx/5xx page or JSON, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from syncd.config import Config
from syncd.console.auth import Gate
from syncd.console.context import Console
from syncd.console.routes import Router
from syncd.console.web import MAX_UPLOAD_BYTES, TOO_LARGE, Refused, secured

__all__ = ["MAX_UPLOAD_BYTES", "TOO_LARGE", "ConsoleApp"]

log = logging.getLogger("syncd.console")


class ConsoleApp:
    """The web console of ``config`` (its [console] section and the ledger it names)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.console = Console(config)
        self.gate = Gate(config.console.password, self.console.pages)
        self.router = Router(self.console, self.gate)

    @property
    def open_mode(self) -> bool:
        """No password: loopback only, without login."""
        return self.gate.open_mode

    @property
    def beside_sync(self) -> bool:
        """Whether the sync runs in this process (``syncd run``), so its calls are recorded
        here; ``syncd console`` alone sets it False."""
        return self.console.beside_sync

    @beside_sync.setter
    def beside_sync(self, value: bool) -> None:
        self.console.beside_sync = value

    def listening_on(self, host: str, port: int) -> None:
        """Tell the app the address its server listens on (``host`` without brackets)."""
        self.gate.listen = (host, port)

    def close(self) -> None:
        """Release the ledger connections."""
        self.console.close()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_UPLOAD_BYTES
        request.max_form_memory_size = 64 * 1024
        pages = self.console.pages
        try:
            response = self.router.dispatch(request)
        except Refused as refused:
            response = pages.refusal(request.path, refused)
        except HTTPException as exc:
            reason = exc.name.lower() if exc.name else "bad request"
            response = pages.refusal(request.path, Refused(exc.code or 400, reason))
        except Exception:  # a page must not take the daemon down, nor show a traceback
            log.exception("console: %s %s failed", request.method, request.path)
            response = pages.refusal(request.path, Refused(500, "internal error (see the log)"))
        return secured(response)(environ, start_response)

    def server_refusal(self, path: str, status: int, reason: str) -> Response:
        """The answer to a request the HTTP server refused before the app saw it (a body over
        the limit, a malformed request): the console's error page, or JSON for the API, with
        the security headers of every answer."""
        return secured(self.console.pages.refusal(path, Refused(status, reason)))
