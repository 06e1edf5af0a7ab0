"""The console served by waitress on a background thread (as the local gallery is).

waitress's own refusals (a body over the limit, a malformed request) are answered with the
console's error page or JSON and its security headers, like every other answer.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Final

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask

from syncd.config import Config
from syncd.console.app import MAX_UPLOAD_BYTES, TOO_LARGE, ConsoleApp

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
        self._map: dict[int, object] = {}
        self._stopping = threading.Event()
        self._server: object = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def bind(self) -> None:
        """Listen on the address without serving yet (OSError if it is taken), so that a
        service can hold all its addresses before it starts anything. Done once."""
        if self._server is not None:
            return
        server = create_server(
            self.app,
            map=self._map,
            host=self.host,
            port=self.port,
            threads=THREADS,
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=IDLE_SECONDS,
            cleanup_interval=IDLE_CHECK_SECONDS,
            ident="syncd-console",
            # waitress refuses a larger body as soon as its Content-Length (or its chunks)
            # say so, without storing it; _ConsoleChannel words that refusal as the app does
            max_request_body_size=MAX_UPLOAD_BYTES + 1,
            expose_tracebacks=False,
            asyncore_use_poll=True,
        )
        for listener in self._map.values():
            if isinstance(listener, BaseWSGIServer):
                listener.channel_class = _ConsoleChannel
                listener.console_app = self.app  # its .application is wrapped by waitress
        self._server = server
        self.port = int(server.effective_port)
        self.app.listening_on(self.host, self.port)

    def start(self) -> None:
        """Listen (unless :meth:`bind` did) and serve on a background thread; returns once
        listening (OSError if the address is taken)."""
        self.bind()
        self._thread = threading.Thread(target=self._serve, name="syncd-console", daemon=True)
        self._thread.start()
        self.app.status_cache.warm_up()
        mode = "no password: loopback only" if self.app.open_mode else "password required"
        log.info("console on %s (%s)", self.url, mode)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            wasyncore.loop(timeout=1.0, map=self._map, use_poll=True, count=1)

    def stop(self) -> None:
        """Stop serving (requests in progress get 5 s) and close the ledger connections."""
        if self._thread is not None:
            self._stopping.set()
            server = self._server
            server.pull_trigger()  # type: ignore[attr-defined]
            self._thread.join()
            self._thread = None
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)  # type: ignore[attr-defined]
            wasyncore.close_all(self._map, ignore_all=True)
            self._server = None
        elif self._server is not None:  # bound, never served
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)  # type: ignore[attr-defined]
            wasyncore.close_all(self._map, ignore_all=True)
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


class _ConsoleErrorTask(ErrorTask):  # type: ignore[misc]
    """A request waitress refused before the app saw it, answered by the app's refusal."""

    def execute(self) -> None:
        error = self.request.error
        reason = TOO_LARGE if error.code == 413 else f"{error.reason.lower()}: {error.body}"
        path = getattr(self.request, "path", "") or "/"
        try:
            response = self.channel.server.console_app.server_refusal(path, error.code, reason)
        except Exception:  # waitress's plain answer rather than none
            log.exception("console: answering a refused request failed")
            super().execute()
            return
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend(response.headers.to_wsgi_list())
        self.set_close_on_finish()  # the rest of the request was not read
        self.write(response.get_data())


class _ConsoleChannel(HTTPChannel):  # type: ignore[misc]
    error_task_class = _ConsoleErrorTask
