"""The web console (README, Web console): a reader of the ledger and a caller of the same
commands, both through the application layer (``syncd.app``); it imports no stage.

``syncd run`` serves it beside the sync when ``console.listen`` is set
(:func:`console_for`); ``syncd console`` serves it alone (:func:`serve_until_signal`).

Its modules, by job: ``server`` (waitress), ``app`` (the WSGI object wiring the rest),
``routes`` (the URL map and dispatch), ``auth`` (who gets in; ``security`` holds the
primitives), ``views`` (a module per page and its JSON), ``context`` (what the views share),
``web`` (pages, JSON, refusals, security headers), ``thumbs``,
``activity`` (the workers' recent calls) and ``text`` (how times and counts are worded).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syncd.config import Config
    from syncd.console.server import ConsoleServer

log = logging.getLogger("syncd.console")


@contextmanager
def console_for(config: Config) -> Iterator[ConsoleServer | None]:
    """The console serving while the context lasts, when ``console.listen`` is set; else
    None. Raises OSError when the address cannot be listened on."""
    if not config.console.listen:
        yield None
        return
    from syncd.console.server import ConsoleServer

    server = ConsoleServer(config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def serve_until_signal(config: Config, host: str | None = None, port: int | None = None) -> str:
    """Serve the console (``console.listen``, or ``host``/``port``) until SIGTERM or SIGINT.
    Returns the URL it served at. Raises OSError when the address cannot be listened on."""
    from syncd.console.server import ConsoleServer

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = ConsoleServer(config, host, port)
    server.app.beside_sync = False  # no sync in this process: its activity page says so
    try:
        server.start()
        while not stop.wait(1.0):
            pass
        log.info("console stopping")
        return server.url
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
