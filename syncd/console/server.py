"""The console served by waitress on a background thread (syncd.serving, as the local
gallery and /metrics are).

waitress's own refusals (a body over the limit, a malformed request) are answered with the
console's error page or JSON and its security headers, like every other answer.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Final

from syncd.config import Config
from syncd.console.app import ConsoleApp
from syncd.console.web import MAX_UPLOAD_BYTES, TOO_LARGE
from syncd.serving import Refused, WaitressServer

log = logging.getLogger("syncd.console")

#: open connections at most: far above what a few operators' browsers hold (6 each), far
#: below the 1024 file descriptors a service gets by default
CONNECTION_LIMIT: Final = 500
#: seconds a connection may sit idle (nothing sent, or half a request) before it is closed:
#: a few dozen idle sockets must not keep the console from answering for minutes
IDLE_SECONDS: Final = 15
#: seconds between the checks for idle connections
IDLE_CHECK_SECONDS: Final = 5
#: requests served at once: a search waits for the gallery, the pages must not wait for it
THREADS: Final = 8


def parse_listen(listen: str) -> tuple[str, int]:
    """'host:port' (IPv6 as '[::1]:8765') -> (host, port); the config checked the form."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class ConsoleServer:
    """The web console of ``config`` on ``console.listen`` (or ``host``/``port``)."""

    def __init__(self, config: Config, host: str | None = None, port: int | None = None) -> None:
        listen_host, listen_port = parse_listen(config.console.listen or "127.0.0.1:0")
        self.host = listen_host if host is None else host
        self.port = listen_port if port is None else port
        self.app = ConsoleApp(config)
        self._server: WaitressServer | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def bind(self) -> None:
        """Listen on the address without serving yet (OSError if it is taken), so that a
        service can hold all its addresses before it starts anything. Done once."""
        self._bound()

    def _bound(self) -> WaitressServer:
        if self._server is not None:
            return self._server
        server = self._server = WaitressServer(
            self.app,
            host=self.host,
            port=self.port,
            name="syncd-console",
            threads=THREADS,
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=IDLE_SECONDS,
            cleanup_interval=IDLE_CHECK_SECONDS,
            # waitress refuses a larger body as soon as its Content-Length (or its chunks)
            # say so, without storing it; _refusal words that refusal as the app does
            max_request_body_size=MAX_UPLOAD_BYTES + 1,
            refusal=self._refusal,
        )
        self.port = server.port
        self.app.listening_on(self.host, self.port)
        return server

    def _refusal(self, refused: Refused) -> tuple[list[tuple[str, str]], bytes]:
        """A request waitress refused before the app saw it, answered by the app's refusal."""
        reason = TOO_LARGE if refused.code == 413 else f"{refused.reason.lower()}: {refused.detail}"
        response = self.app.server_refusal(refused.path, refused.code, reason)
        return response.headers.to_wsgi_list(), response.get_data()

    def start(self) -> None:
        """Listen (unless :meth:`bind` did) and serve on a background thread; returns once
        listening (OSError if the address is taken)."""
        self._bound().start()
        mode = "no password: loopback only" if self.app.open_mode else "password required"
        log.info("console on %s (%s)", self.url, mode)

    def stop(self) -> None:
        """Stop serving (requests in progress get 5 s) and close the ledger connections."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.app.close()

    def __enter__(self) -> ConsoleServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
