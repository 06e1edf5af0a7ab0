"""sd_notify(3) for `syncd run` under systemd (Type=notify, WatchdogSec).

Speaks only when systemd asked for it: $NOTIFY_SOCKET names a unix datagram socket (a path,
or an abstract name starting with '@'). Nothing here ever raises: a daemon must not die
because its supervisor went away.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends READY=1, STATUS=..., WATCHDOG=1 and STOPPING=1 to systemd."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_usec = _watchdog_usec(env)
        self._sock: socket.socket | None = None
        self._failed = False
        if self._address is not None:
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            except OSError as exc:
                log.warning("systemd notification socket unusable: %s", exc.strerror)

    @property
    def enabled(self) -> bool:
        """True when systemd listens."""
        return self._sock is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between two WATCHDOG=1 pings (half of WatchdogSec), None when off."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2e6

    def ready(self, status: str = "") -> None:
        """Tell systemd start-up is complete (watching)."""
        self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        """One-line status shown by `systemctl status`."""
        self._send(f"STATUS={text}")

    def watchdog(self) -> None:
        """Keep-alive ping; send at `watchdog_interval`."""
        self._send("WATCHDOG=1")

    def reloading(self) -> None:
        """Config reload begins (pair with ready())."""
        self._send("RELOADING=1")

    def stopping(self, status: str = "") -> None:
        """Shutdown begins."""
        self._send("STOPPING=1" + (f"\nSTATUS={status}" if status else ""))

    def close(self) -> None:
        """Release the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, message: str) -> None:
        if self._sock is None or self._address is None:
            return
        try:
            self._sock.sendto(message.encode("utf-8", "replace"), self._address)
            self._failed = False
        except OSError as exc:
            if not self._failed:  # one line per outage, not per ping
                log.warning("cannot notify systemd: %s", exc.strerror or exc)
            self._failed = True


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # abstract namespace
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET=%s is not a unix socket path; not notifying systemd", value)
    return None


def _watchdog_usec(env: dict[str, str] | os._Environ[str]) -> int | None:
    raw = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not raw:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec if usec > 0 else None
