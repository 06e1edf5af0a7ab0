"""The console served by waitress on a background thread (as the local gallery is)."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from waitress import wasyncore
from waitress.server import create_server

from syncd.config import Config
from syncd.console.app import MAX_UPLOAD_BYTES, ConsoleApp

log = logging.getLogger("syncd.console")


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

    def start(self) -> None:
        """Listen and serve on a background thread; returns once listening (OSError if the
        address is taken)."""
        server = create_server(
            self.app,
            map=self._map,
            host=self.host,
            port=self.port,
            threads=4,
            ident="syncd-console",
            max_request_body_size=MAX_UPLOAD_BYTES + 64 * 1024,
            expose_tracebacks=False,
            asyncore_use_poll=True,
        )
        self._server = server
        self.port = int(server.effective_port)
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
