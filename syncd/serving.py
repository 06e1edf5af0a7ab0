"""A WSGI app served by waitress on a background thread: the local gallery, the web console
and /metrics all serve this way.

``WaitressServer(app, ...)`` listens at once (OSError if the address is taken), so a
service can hold all its addresses before it starts anything; ``start()`` serves on a
thread; ``stop()`` lets requests in progress finish (up to 5 s) and closes every
connection and the listening socket. Each server states its own limits: threads, open
connections, idle seconds, largest body. A request waitress refuses before the app sees
it (a body over the limit, a head too large, malformed framing) is answered by the
server's ``refusal`` function when it has one, in the app's own words and headers.

waitress warns "Task queue depth is N" whenever a request waits for a free thread: a
moment's backlog that a busy machine sees often, not something for the operator's
stderr. Those records are logged at DEBUG instead (shown with ``--verbose``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask

log = logging.getLogger(__name__)

#: seconds requests in progress get to finish when a server stops
STOP_SECONDS: Final = 5
#: the logger of waitress's "Task queue depth is N" warnings
QUEUE_LOGGER: Final = "waitress.queue"


@dataclass(frozen=True)
class Refused:
    """A request waitress refused before the app saw it."""

    #: its HTTP status: 413 body over the limit, 431 head too large, 400/501 malformed
    code: int
    #: the status's reason phrase ("Request Entity Too Large")
    reason: str
    #: waitress's explanation of the refusal
    detail: str
    #: the request's path when waitress read that far, else "/"
    path: str


#: the answer to a refused request: (headers, body); its status is the refusal's own and
#: the connection closes after it (the rest of the request was not read)
Refusal = Callable[[Refused], tuple[list[tuple[str, str]], bytes]]


class _QueueDepthAtDebug(logging.Filter):
    """Turns waitress's queue-depth warnings into DEBUG records (dropped unless the logger
    admits DEBUG): see the module docstring."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_QUEUE_DEPTH_AT_DEBUG: Final = _QueueDepthAtDebug()


def quiet_queue_warnings() -> None:
    """Log waitress's queue-depth warnings at DEBUG (once per process; idempotent)."""
    logging.getLogger(QUEUE_LOGGER).addFilter(_QUEUE_DEPTH_AT_DEBUG)


class _RefusalTask(ErrorTask):  # type: ignore[misc]
    """A refused request answered by its server's ``refusal`` (else waitress's plain text)."""

    def execute(self) -> None:
        refusal: Refusal | None = getattr(self.channel.server, "syncd_refusal", None)
        error = self.request.error
        if refusal is None:
            super().execute()
            return
        refused = Refused(
            code=int(error.code),
            reason=str(error.reason),
            detail=str(error.body),
            path=getattr(self.request, "path", "") or "/",
        )
        try:
            headers, body = refusal(refused)
        except Exception:  # waitress's plain answer rather than none
            log.exception("%s: answering a refused request failed", self.channel.server.adj.ident)
            super().execute()
            return
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _RefusalChannel(HTTPChannel):  # type: ignore[misc]
    error_task_class = _RefusalTask


class WaitressServer:
    """``app`` served by waitress on ``host``:``port`` (0: a free port, then ``port``).

    ``name`` is the Server header and the serving thread's name; ``threads`` run requests;
    ``connection_limit`` connections are open at most (beyond it waitress stops accepting
    until one closes); a connection silent for ``channel_timeout`` seconds while no request
    of its own runs is closed, checked every ``cleanup_interval`` seconds; a body over
    ``max_request_body_size`` bytes is refused unread (answered by ``refusal``).
    """

    def __init__(
        self,
        app: Callable[..., Any],
        *,
        host: str,
        port: int,
        name: str,
        threads: int,
        connection_limit: int,
        channel_timeout: int,
        cleanup_interval: int,
        max_request_body_size: int,
        refusal: Refusal | None = None,
    ) -> None:
        quiet_queue_warnings()
        self.name = name
        self.host = host
        self._map: dict[int, Any] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: Any = create_server(
            app,
            map=self._map,
            host=host,
            port=port,
            threads=threads,
            connection_limit=connection_limit,
            channel_timeout=channel_timeout,
            cleanup_interval=cleanup_interval,
            ident=name,
            max_request_body_size=max_request_body_size,
            expose_tracebacks=False,
            asyncore_use_poll=True,
        )
        for listener in self._map.values():
            if isinstance(listener, BaseWSGIServer):
                listener.channel_class = _RefusalChannel
                listener.syncd_refusal = refusal
        self.port = int(self._server.effective_port)
        self._closed = False

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def waiting(self) -> int:
        """Requests read whole and waiting for a free thread, now."""
        return len(self._server.task_dispatcher.queue)

    def start(self) -> None:
        """Serve on a background thread (once)."""
        if self._thread is not None or self._closed:
            raise RuntimeError(f"{self.name} is already started or stopped")
        self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            wasyncore.loop(timeout=1.0, map=self._map, use_poll=True, count=1)

    def stop(self) -> None:
        """Stop serving: requests in progress get STOP_SECONDS, then every connection and
        the listening socket close. Also for a server never started; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._stopping.set()
            self._server.pull_trigger()
            self._thread.join()
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=STOP_SECONDS)
        wasyncore.close_all(self._map, ignore_all=True)
