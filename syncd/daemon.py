"""`syncd run`: reconcile, then watch and sync until SIGTERM/SIGINT; SIGHUP reloads.

This module is the process; the work is the application's service (``syncd.app.service``:
the watcher set, scan, plan and the sync workers over the ledger). Threads, and who owns what:
- the main thread waits for signals (all other threads have them blocked) and, between
  signals, pings systemd's watchdog and refreshes STATUS=;
- the work thread runs the service's rounds: settled batches from the watchers are scanned
  and planned into the ledger, which wakes the sync workers; a reload (SIGHUP) is applied
  there, between two rounds;
- watchdog's observer threads feed the watchers; the sync engine runs its own workers;
- the supervise thread has the service look at every library root every few seconds (and
  at once when the observer reports a limit or an overflow), for /healthz and `syncd status`;
- /metrics (with /healthz) and the console serve on threads of their own.

Each long-lived part takes its own section of the config at start and on a reload: the
listeners here (``[metrics]``, ``[console]``), the service's parts there. Logging takes its
section from the command line (``--log-format``, ``-v``) once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from syncd.app.service import Service, check_config
from syncd.config import Config, ConsoleConfig, MetricsConfig, load_config
from syncd.errors import ConfigError, SyncdError
from syncd.logformat import LogFormat, configure_logging
from syncd.metrics import Health, MetricsServer, MetricsSnapshot
from syncd.sdnotify import SystemdNotifier

if TYPE_CHECKING:
    from syncd.console.server import ConsoleServer

log = logging.getLogger("syncd.run")

_T = TypeVar("_T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
#: seconds between STATUS= refreshes when systemd's watchdog is off
_STATUS_INTERVAL = 5.0
#: seconds between two looks at every library root (vanished, back, replaced, observer died)
_SUPERVISE_INTERVAL = 2.0


def run(
    config_file: str | Path | None, log_format: LogFormat = "text", verbose: bool = False
) -> int:
    """Run the daemon in this (main) thread until SIGTERM/SIGINT; returns the exit code."""
    configure_logging(log_format, verbose)
    # block before any thread starts, so every thread inherits the mask and only sigwait sees them
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        config = load_config(config_file)
        check_config(config)
    except ConfigError as exc:
        log.error("config: %s", exc)
        return EXIT_CONFIG
    notifier = SystemdNotifier()
    daemon = Daemon(config, config_file, notifier)
    try:
        daemon.start()
    except ConfigError as exc:
        log.error("config: %s", exc)
        daemon.stop()
        return EXIT_CONFIG
    except ListenError as exc:
        log.error("%s", exc)
        daemon.stop()
        return EXIT_FAILED
    except (SyncdError, OSError) as exc:
        log.error("cannot start: %s", _one_line(exc))
        daemon.stop()
        return EXIT_FAILED
    code = EXIT_OK
    try:
        tick = notifier.watchdog_interval or _STATUS_INTERVAL
        while True:
            info = signal.sigtimedwait(_SIGNALS, tick)
            if info is None:
                if not daemon.healthy():
                    log.critical(
                        "the work thread or the sync workers stopped; exiting so systemd restarts us"
                    )
                    code = EXIT_FAILED
                    break
                notifier.watchdog()
                notifier.status(daemon.status_line())
            elif info.si_signo == signal.SIGHUP:
                log.info("SIGHUP: reloading %s", daemon.config_source)
                daemon.request_reload()
            elif info.si_signo in (signal.SIGTERM, signal.SIGINT):
                log.info("%s: stopping", signal.Signals(info.si_signo).name)
                break
            else:
                # a debugger attaching (ptrace) can wake the wait with no signal of ours
                log.debug("woken with signal number %d; going on", info.si_signo)
    finally:
        notifier.stopping("finishing in-flight calls")
        daemon.stop()
        notifier.close()
    log.info("stopped")
    return code


class ListenError(Exception):
    """A listener cannot listen on its address; the message names the address and the key."""


def _listening(key: str, listen: str, bind: Callable[[], _T]) -> _T:
    """``bind()``, its OSError said as a ListenError naming ``listen`` and its config ``key``."""
    try:
        return bind()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ListenError(f"cannot listen on {listen} for {key}: {reason}") from None


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class Daemon:
    """The running process: the service, its threads, the listeners, systemd."""

    def __init__(
        self, config: Config, config_file: str | Path | None, notifier: SystemdNotifier
    ) -> None:
        self._config_file = config_file
        self._notifier = notifier
        self._stack = ExitStack()
        self._service: Service = Service(config)
        #: the sections the listeners were bound with (a reload compares its own to them)
        self._metrics_section = config.metrics
        self._console_section = config.console
        self._metrics: MetricsServer | None = None
        self._console: ConsoleServer | None = None
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._work: threading.Thread | None = None
        self._supervisor: threading.Thread | None = None

    @property
    def config_source(self) -> str:
        """The config file in use, for log lines."""
        return str(self._service.config.source or self._config_file or "")

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Listen, then open everything, watch every root, queue the start-up reconcile, tell
        systemd. A ListenError when an address is taken: then nothing was started."""
        config = self._service.config
        self._metrics = self._bind_metrics(config.metrics)
        self._console = self._bind_console(config)
        self._stack.enter_context(self._service.running())
        self._service.start()
        if self._metrics is not None:
            self._metrics.start()
            log.info("metrics on http://%s/metrics", config.metrics.listen)
        if self._console is not None:
            self._console.start()
        self._service.queue_reconcile()
        self._work = threading.Thread(target=self._work_loop, name="syncd-work", daemon=True)
        self._work.start()
        self._supervisor = threading.Thread(
            target=self._supervise_loop, name="syncd-supervise", daemon=True
        )
        self._supervisor.start()
        self._notifier.ready(self.status_line())
        log.info("%s", self._service.started_line())

    def _bind_metrics(self, section: MetricsConfig) -> MetricsServer | None:
        """Take the address of /metrics, serving nothing yet ("" listens nowhere)."""
        if not section.listen:
            return None
        return _listening(
            "metrics.listen",
            section.listen,
            lambda: MetricsServer(section.listen, self.snapshot, self.health),
        )

    def _bind_console(self, config: Config) -> ConsoleServer | None:
        """Take the address of the console, serving nothing yet ("" listens nowhere)."""
        from syncd.console.server import ConsoleServer

        if not config.console.listen:
            return None
        console = ConsoleServer(config)
        _listening("console.listen", config.console.listen, console.bind)
        return console

    def request_reload(self) -> None:
        """Reload the config file on the work thread (SIGHUP)."""
        self._reload.set()
        self._service.wake()

    def stop(self) -> None:
        """Stop taking work, let in-flight calls end (api.timeout), commit, release all."""
        self._stop.set()
        self._service.halt()
        for thread in (self._work, self._supervisor):
            if thread is not None and thread.is_alive():
                thread.join()
        if self._metrics is not None:
            self._metrics.close()
        if self._console is not None:
            self._console.stop()  # before the service's ledger closes: it reads the ledger
        # the service's exit stops the workers within api.timeout and closes the ledger
        self._stack.close()

    def healthy(self) -> bool:
        """True while the work thread and the sync workers run."""
        work_ok = self._work is not None and self._work.is_alive()
        return work_ok and self._service.healthy()

    # -- threads -------------------------------------------------------------------------

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self._apply_reload()
            self._service.work(self._stop)

    def _supervise_loop(self) -> None:
        while not self._stop.is_set():
            self._service.supervise(_SUPERVISE_INTERVAL, self._stop)

    # -- reload --------------------------------------------------------------------------

    def _apply_reload(self) -> None:
        """Read the config file again; a broken one is refused and the running one stays.
        Each part compares its own section: the listeners here, the service's parts there."""
        try:
            new = load_config(self._config_file)
            self._service.check(new)
        except ConfigError as exc:
            log.error("config reload refused, the running config stays: %s", exc)
            return
        self._notifier.reloading()
        self._commit_metrics(new.metrics)
        self._commit_console(new)
        self._service.reload(new)
        self._notifier.ready(self.status_line())

    def _commit_metrics(self, section: MetricsConfig) -> None:
        """Serve /metrics on the new ``[metrics] listen`` when it changed; when the new
        address cannot be taken the old one serves on."""
        if section == self._metrics_section:
            return
        try:
            server = self._bind_metrics(section)
        except ListenError as exc:
            log.error("config reload: %s; /metrics stays as it was", exc)
            return
        if self._metrics is not None:
            self._metrics.close()
        self._metrics, self._metrics_section = server, section
        if server is not None:
            server.start()
            log.info("config reload: metrics on http://%s/metrics", section.listen)
        else:
            log.info("config reload: /metrics is off")

    def _commit_console(self, config: Config) -> None:
        """Serve the console with the new ``[console]`` section when it changed (same
        address: the old one stops first; another: the new one is taken first, and when it
        cannot be the old one serves on)."""
        section: ConsoleConfig = config.console
        old = self._console_section
        if section == old:
            return
        if self._console is not None and section.listen == old.listen:
            self._console.stop()
            self._console = None
        try:
            console = self._bind_console(config)
        except ListenError as exc:
            log.error("config reload: %s; the console stays as it was", exc)
            if self._console is None:
                self._console_section = ConsoleConfig()
            return
        if self._console is not None:
            self._console.stop()
        self._console, self._console_section = console, section
        if console is not None:
            console.start()
        else:
            log.info("config reload: the console is off")

    # -- reporting ---------------------------------------------------------------------

    def status_line(self) -> str:
        """One line for `systemctl status`: libraries, settling paths, queue depth."""
        service = self._service
        modes = service.watch_modes()
        parts = [f"watching {len(modes)} librar{'y' if len(modes) == 1 else 'ies'}"]
        missing = [n for n, m in modes.items() if m == "missing"]
        if missing:
            parts.append("root missing: " + ", ".join(sorted(missing)))
        polled = [n for n, m in modes.items() if m == "polling"]
        if polled:
            parts.append("polling: " + ", ".join(sorted(polled)))
        parts.append(f"{service.settling} paths settling")
        try:
            depth = service.queue_depth()
        except Exception:  # a busy ledger must not cost the watchdog ping
            log.debug("queue depth unavailable", exc_info=True)
        else:
            if depth is not None:
                parts.append(f"{depth} calls queued")
        return "; ".join(parts)

    def snapshot(self) -> MetricsSnapshot:
        """Numbers for /metrics."""
        return self._service.snapshot()

    def health(self) -> Health:
        """/healthz: 503 with one line per cause (the work thread or workers stopped, the
        ledger away, calls paused, a gallery stopped, a degraded library), else 200; the
        library states the operator accepts (``health.accept``) follow "ok"."""
        causes = [] if self.healthy() else ["work thread or sync workers stopped"]
        return self._service.health(causes)
