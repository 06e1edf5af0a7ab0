"""`syncd run`: reconcile, then watch and sync until SIGTERM/SIGINT; SIGHUP reloads.

Threads, and who owns what:
- the main thread waits for signals (all other threads have them blocked) and, between
  signals, pings systemd's watchdog and refreshes STATUS=;
- the work thread takes settled batches from the aggregator and hands them to the scanner,
  which writes intents to the ledger and wakes the sync workers;
- watchdog's observer threads feed the aggregator; the sync engine runs its own workers;
- the supervise thread looks at every library root every few seconds (and at once when the
  observer reports a limit or an overflow), keeps what it saw for /healthz, and publishes how
  each root is watched for `syncd status` (`syncd.health`).

The ledger is the queue: nothing here holds work a crash would lose. Events only say where to
look; the scan decides what changed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from syncd.api import ImageSearchClient
from syncd.app.gallery import open_client
from syncd.config import Config, ConfigRef, LibraryConfig, load_config
from syncd.errors import ConfigError, SyncdError
from syncd.health import (
    Counts,
    LibraryCounts,
    LibraryHealth,
    RootFacts,
    ServiceStateFile,
    health_report,
    inspect_root,
    scans_reasons,
    service_state_path,
)
from syncd.ledger.backlog import items_by_state, pending_intents, vanished_waiting
from syncd.ledger.conditions import LibraryConditions
from syncd.ledger.hosts import join_ledger
from syncd.ledger.report import StatusReport, ledger_status
from syncd.ledger.schema import Ledger, LedgerUnavailable, open_ledger
from syncd.logformat import LogFormat, configure_logging
from syncd.metrics import Health, MetricsServer, MetricsSnapshot
from syncd.paths import LookAgain, WalkFilter, printable_relpath
from syncd.plan.driver import PlanRules, plan_pending
from syncd.scan.scanner import ScanResult, scan_paths
from syncd.sdnotify import SystemdNotifier
from syncd.sync.engine import EngineStats, SyncEngine
from syncd.watch.aggregator import (
    SettleAggregator,
    SettledBatch,
    WatchRoot,
    library_path_filter,
)
from syncd.watch.observer import LibraryWatcher

if TYPE_CHECKING:
    from syncd.console.server import ConsoleServer

log = logging.getLogger("syncd.run")

_T = TypeVar("_T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
#: seconds at most between two tries of a ledger that went away
LEDGER_RETRY_MAX = 60.0
#: seconds between STATUS= refreshes when systemd's watchdog is off
_STATUS_INTERVAL = 5.0
#: seconds between two looks at every library root (vanished, back, replaced, observer died)
_SUPERVISE_INTERVAL = 2.0
#: settled paths logged one per line in a batch; the rest are counted
_LOGGED_PATHS = 20
#: seconds after delete_grace before the replan, so the grace is surely over
_REPLAN_SLACK = 0.5


def run(
    config_file: str | Path | None, log_format: LogFormat = "text", verbose: bool = False
) -> int:
    """Run the daemon in this (main) thread until SIGTERM/SIGINT; returns the exit code."""
    configure_logging(log_format, verbose)
    # block before any thread starts, so every thread inherits the mask and only sigwait sees them
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        config = load_config(config_file)
        _check_filters(config)
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


def _check_filters(config: Config) -> None:
    """Globs that cannot compile are config errors, named by library."""
    for lib in config.libraries:
        try:
            WalkFilter.for_library(lib, config.watch)
        except ValueError as exc:
            raise ConfigError(f"library {lib.name}: {exc}") from None


@dataclass
class _Library:
    config: LibraryConfig
    filter: WalkFilter


class Daemon:
    """The running service: config, ledger, sync engine, watcher, metrics."""

    def __init__(
        self, config: Config, config_file: str | Path | None, notifier: SystemdNotifier
    ) -> None:
        #: the one reference a reload swaps (every operation reads it once)
        self._ref = ConfigRef(config)
        self._config_file = config_file
        self._notifier = notifier
        self._stack = ExitStack()
        self._libraries: dict[str, _Library] = {}
        self._agg = SettleAggregator(config.watch.settle)
        self._watcher = LibraryWatcher(
            self._agg.touch,
            self._on_missed_events,
            polling=config.watch.polling,
            poll_interval=_poll_interval(config.watch.settle),
        )
        #: library -> its root as the supervise thread last saw it (a hung mount stalls that
        #: thread, never /healthz)
        self._root_facts: dict[str, RootFacts] = {}
        #: how each root is watched and seen, for `syncd status` and `syncd console`
        self._state_file = ServiceStateFile(service_state_path(config))
        self._pipeline: Pipeline | None = None
        self._metrics: MetricsServer | None = None
        self._console: ConsoleServer | None = None
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._work: threading.Thread | None = None
        self._supervisor: threading.Thread | None = None
        self._next_full_rescan = 0.0
        #: monotonic time of the next replan (vanished files past delete_grace), None = none due
        self._next_replan: float | None = None
        #: the ledger went away (a database restart, a failover): why, since when, and when to
        #: try it again
        self._away: LedgerAway | None = None

    @property
    def config_source(self) -> str:
        """The config file in use, for log lines."""
        return str(self._ref.current.source or self._config_file or "")

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Listen, then open everything, watch every root, queue the start-up reconcile, tell
        systemd. A ListenError when an address is taken: then nothing was started."""
        self._bind_listeners()
        self._pipeline = self._stack.enter_context(open_pipeline(self._ref))
        for lib in self._ref.current.libraries:
            self._add_library(lib)
        self._agg.set_roots(self._roots())
        self._look_at_roots()
        if self._metrics is not None:
            self._metrics.start()
            log.info("metrics on http://%s/metrics", self._ref.current.metrics.listen)
        if self._console is not None:
            self._console.start()
        # the start-up reconcile: a full scan of every library, before any settled batch
        for name in self._libraries:
            self._agg.request_rescan(name, immediate=True)
        self._schedule_full_rescan()
        # files that vanished before this start finish their grace then
        self._guarded(self._arm_replan)
        self._work = threading.Thread(target=self._work_loop, name="syncd-work", daemon=True)
        self._work.start()
        self._supervisor = threading.Thread(
            target=self._supervise_loop, name="syncd-supervise", daemon=True
        )
        self._supervisor.start()
        self._notifier.ready(self.status_line())
        log.info(
            "watching %d librar%s; settle %.1f s, delete grace %.0f s",
            len(self._libraries), "y" if len(self._libraries) == 1 else "ies",
            self._ref.current.watch.settle, self._ref.current.watch.delete_grace,
        )  # fmt: skip

    def _bind_listeners(self) -> None:
        """Take the addresses of /metrics and the console, serving neither yet: a taken one
        stops the start before anything runs (stop() releases those already taken)."""
        from syncd.console.server import ConsoleServer

        config = self._ref.current
        if config.metrics.listen:
            self._metrics = _listening(
                "metrics.listen",
                config.metrics.listen,
                lambda: MetricsServer(config.metrics.listen, self.snapshot, self.health),
            )
        if config.console.listen:
            self._console = ConsoleServer(config)
            _listening("console.listen", config.console.listen, self._console.bind)

    def request_reload(self) -> None:
        """Reload the config file on the work thread (SIGHUP)."""
        self._reload.set()
        self._agg.wake()

    def stop(self) -> None:
        """Stop taking work, let in-flight calls end (api.timeout), commit, release all."""
        self._stop.set()
        self._agg.close()
        self._watcher.close()
        for thread in (self._work, self._supervisor):
            if thread is not None and thread.is_alive():
                thread.join()
        self._state_file.remove()  # nothing is watched any more
        if self._metrics is not None:
            self._metrics.close()
        if self._console is not None:
            self._console.stop()  # before the pipeline: it reads the ledger
        # the pipeline's exit stops the workers within api.timeout and closes the ledger
        self._stack.close()

    def healthy(self) -> bool:
        """True while the work thread and the sync workers run."""
        work_ok = self._work is not None and self._work.is_alive()
        return work_ok and (self._pipeline is None or self._pipeline.healthy())

    # -- the work thread ---------------------------------------------------------------

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self._apply_reload()
            batch = self._agg.wait_batch(self._seconds_to_next_deadline())
            if self._stop.is_set():
                break
            if batch is not None:
                self._apply(batch)
            now = time.monotonic()
            if self._ref.current.watch.rescan_interval and now >= self._next_full_rescan:
                log.info("periodic full rescan (watch.rescan_interval)")
                for name in self._libraries:
                    self._agg.request_rescan(name)
                self._schedule_full_rescan()
            if self._next_replan is not None and now >= self._next_replan:
                self._next_replan = None
                self._guarded(self._replan)
            away = self._away
            if away is not None and now >= away.retry_at:
                # try the ledger again: a full rescan finds what changed while it was away
                away.retry_at = float("inf")
                for name in self._libraries:
                    self._agg.request_rescan(name, immediate=True)

    def _apply(self, batch: SettledBatch) -> None:
        """Scan what settled (a full_rescan look scans its library whole), then wake the workers."""
        looks = [look for look in batch if look.library in self._libraries]
        for look in looks:
            _log_changes(look)
        if looks:
            self._guarded(self._scan_changes, looks)

    def _scan_changes(self, looks: list[LookAgain]) -> None:
        assert self._pipeline is not None
        result = self._pipeline.scan_changes(self._ref.current, looks, self._stop)
        for lib in result.libraries:
            if lib.settling_paths:
                # looked at again once quiet: the work thread never sleeps on a writer
                self._agg.look_again_when_quiet(LookAgain(lib.name, tuple(lib.settling_paths)))
        self._after_scan(result)

    def _after_scan(self, result: ScanResult) -> None:
        assert self._pipeline is not None
        if self._away is not None:
            log.info("the ledger is back after %.0f s", time.time() - self._away.since)
            self._away = None
        self._pipeline.wake()
        if any(lib.vanished for lib in result.libraries):
            # their deletes are due once delete_grace is over, unless they come back
            self._arm_replan()

    def _replan(self) -> None:
        assert self._pipeline is not None
        self._pipeline.replan(self._ref.current)
        self._pipeline.wake()
        self._arm_replan()

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        """Run one step of work; an error is logged and retried by a rescan, never fatal."""
        try:
            step(*args)
        except ScanInterrupted:
            log.info("scan interrupted: stopping (the next start scans again)")
        except LedgerUnavailable as exc:
            self._ledger_away(exc)
            return
        except SyncdError as exc:
            log.warning("%s failed: %s; retrying with a rescan", step.__name__.strip("_"), exc)
            self._retry_later()
        except Exception:  # one bad batch must not end the service
            log.exception("%s failed; retrying with a rescan", step.__name__.strip("_"))
            self._retry_later()

    def _ledger_away(self, exc: LedgerUnavailable) -> None:
        """The ledger cannot be reached: watching goes on (events wait in the aggregator),
        scans and calls stop, and the ledger is tried again after a growing pause."""
        away = self._away
        if away is None:
            away = self._away = LedgerAway(str(exc), time.time())
            log.warning("%s; watching goes on, calls wait until it is back", exc)
        else:
            away.reason = str(exc)
            away.tries += 1
        away.retry_at = time.monotonic() + away.pause()

    def _retry_later(self) -> None:
        for name in self._libraries:
            self._agg.request_rescan(name)

    def _arm_replan(self) -> None:
        """Plan again when the first vanished file's delete_grace is over."""
        assert self._pipeline is not None
        end = self._pipeline.next_grace_end(self._ref.current)
        if end is None:
            self._next_replan = None
            return
        self._next_replan = time.monotonic() + max(0.0, end - time.time()) + _REPLAN_SLACK

    def _seconds_to_next_deadline(self) -> float | None:
        deadlines = [d for d in (self._next_replan,) if d is not None]
        if self._away is not None:
            deadlines.append(self._away.retry_at)
        if self._ref.current.watch.rescan_interval:
            deadlines.append(self._next_full_rescan)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _schedule_full_rescan(self) -> None:
        self._next_full_rescan = time.monotonic() + self._ref.current.watch.rescan_interval

    def _supervise_loop(self) -> None:
        while not self._stop.is_set():
            # a limit reached or an overflow is acted on at once, not at the next round
            self._watcher.wait_for_trouble(_SUPERVISE_INTERVAL)
            if self._stop.is_set():
                break
            self._watcher.supervise()
            self._look_at_roots()

    def _look_at_roots(self) -> None:
        """Look at every library root (for /healthz) and publish how each is watched."""
        libraries = list(self._libraries.items())  # the work thread may reload meanwhile
        facts = {name: inspect_root(lib.config.root) for name, lib in libraries}
        self._root_facts = facts
        self._state_file.publish(self._watcher.states(), facts)

    def _on_missed_events(self, library: str, reason: str) -> None:
        log.info("library %s: full rescan (%s)", library, reason)
        self._agg.request_rescan(library)

    # -- libraries and reload ----------------------------------------------------------

    def _roots(self) -> list[WatchRoot]:
        return [
            WatchRoot(name, os.path.abspath(lib.config.root), library_path_filter(lib.filter))
            for name, lib in self._libraries.items()
        ]

    def _add_library(self, lib: LibraryConfig) -> None:
        self._libraries[lib.name] = _Library(
            lib, WalkFilter.for_library(lib, self._ref.current.watch)
        )
        self._watcher.watch(lib.name, lib.root, follow_symlinks=lib.follow_symlinks)

    def _apply_reload(self) -> None:
        """Swap in a new config file; a broken one is refused and the running one stays."""
        try:
            new = load_config(self._config_file)
            _check_filters(new)
            if self._pipeline is not None:
                self._pipeline.join(new)  # a library another host owns is refused here
        except ConfigError as exc:
            log.error("config reload refused, the running config stays: %s", exc)
            return
        self._notifier.reloading()
        old = self._ref.current
        for section in ("api", "ledger", "metrics", "console"):
            if getattr(new, section) != getattr(old, section):
                log.warning("config reload: [%s] changes take effect after a restart", section)
        # sections that need a restart keep their running values
        new = replace(new, api=old.api, ledger=old.ledger, metrics=old.metrics, console=old.console)
        self._ref.swap(new)
        self._agg.set_settle(new.watch.settle)
        watch_changed = (new.watch.ignore, new.watch.polling) != (
            old.watch.ignore,
            old.watch.polling,
        )
        if new.watch.polling != old.watch.polling:
            log.info("config reload: watch.polling is now %s", new.watch.polling)
            self._watcher.set_polling(new.watch.polling)
        # roots polled because of an inotify limit: the limit may have been raised meanwhile
        self._watcher.retry_inotify()
        wanted = {lib.name: lib for lib in new.libraries}
        for name in [n for n in self._libraries if n not in wanted]:
            log.info("library %s: removed from the config; no longer watched", name)
            self._watcher.unwatch(name)
            del self._libraries[name]
        rescan: list[str] = []
        for name, lib in wanted.items():
            current = self._libraries.get(name)
            if current is None:
                log.info("library %s: added (%s)", name, lib.root)
                self._add_library(lib)
                rescan.append(name)
            elif current.config != lib or watch_changed:
                if (current.config.root, current.config.follow_symlinks) != (
                    lib.root, lib.follow_symlinks,
                ):  # fmt: skip
                    self._add_library(lib)
                else:
                    self._libraries[name] = _Library(lib, WalkFilter.for_library(lib, new.watch))
                log.info("library %s: rules changed; rescanning", name)
                rescan.append(name)
        self._agg.set_roots(self._roots())
        if self._pipeline is not None:
            self._guarded(self._pipeline.reconfigure, new)
        for name in rescan:
            self._agg.request_rescan(name, immediate=True)
        if new.watch.rescan_interval != old.watch.rescan_interval:
            self._schedule_full_rescan()
        log.info("config reloaded: %d libraries", len(self._libraries))
        self._notifier.ready(self.status_line())

    # -- reporting ---------------------------------------------------------------------

    def status_line(self) -> str:
        """One line for `systemctl status`: libraries, settling paths, queue depth."""
        modes = self._watcher.modes()
        parts = [f"watching {len(modes)} librar{'y' if len(modes) == 1 else 'ies'}"]
        missing = [n for n, m in modes.items() if m == "missing"]
        if missing:
            parts.append("root missing: " + ", ".join(sorted(missing)))
        polled = [n for n, m in modes.items() if m == "polling"]
        if polled:
            parts.append("polling: " + ", ".join(sorted(polled)))
        parts.append(f"{self._agg.pending_count} paths settling")
        if self._pipeline is not None:
            try:
                parts.append(f"{self._pipeline.queue_depth()} calls queued")
            except Exception:  # a busy ledger must not cost the watchdog ping
                log.debug("queue depth unavailable", exc_info=True)
        return "; ".join(parts)

    def snapshot(self) -> MetricsSnapshot:
        """Numbers for /metrics."""
        pipeline = self._pipeline
        base = MetricsSnapshot()
        known: list[Counts] | None = None
        if pipeline is not None:
            # while the ledger is away its numbers are left out; /healthz says why
            with contextlib.suppress(LedgerUnavailable):
                base = pipeline.snapshot(self._ref.current)
                held = base.file_states
                known = [
                    Counts(name, n, held.get((name, "held"), 0)) for name, n in base.files.items()
                ]
        libraries = self.library_health(known)
        return replace(
            base,
            watch_pending=self._agg.pending_count,
            watch_modes=self._watcher.modes(),
            library_conditions={
                (h.library, r.code): not r.accepted for h in libraries for r in h.reasons
            },
            library_polling={h.library: h.polling for h in libraries},
        )

    def library_health(self, known: Sequence[LibraryCounts] | None) -> list[LibraryHealth]:
        """Every library's health: its root as last seen, how it is watched now, what its
        last scan could not see, and the ledger's numbers in `known` (None: the ledger
        cannot be read)."""
        pipeline = self._pipeline
        scans = pipeline.conditions if pipeline is not None and known is not None else None
        return health_report(
            self._ref.current, known, self._watcher.states(), self._root_facts,
            scans_reasons(scans),
        )  # fmt: skip

    def health(self) -> Health:
        """/healthz: 503 with one line per cause (the work thread or workers stopped, the
        ledger away, calls paused, a gallery stopped, a degraded library), else 200; the
        library states the operator accepts (``health.accept``) follow "ok"."""
        causes: list[str] = []
        if not self.healthy():
            causes.append("work thread or sync workers stopped")
        known: Sequence[LibraryCounts] | None = None
        away = self._away
        if away is not None:
            causes.append(f"ledger unreachable since {_utc(away.since)}: {away.reason}")
        elif self._pipeline is not None:
            try:
                report = self._pipeline.status(self._ref.current)
            except LedgerUnavailable as exc:
                causes.append(f"ledger unreachable: {exc}")
            else:
                known = report.libraries
                causes += _problems(report)
        libraries = self.library_health(known)
        causes += [line for lib in libraries for line in lib.lines()]
        accepted = [f"accepted: {line}" for lib in libraries for line in lib.lines(accepted=True)]
        if causes:
            return Health(False, "\n".join(causes + accepted))
        return Health(True, "\n".join(["ok", *accepted]))


@dataclass
class LedgerAway:
    """The ledger could not be reached: ``reason`` in one line (no password),
    ``since`` (epoch s), ``tries`` since, and when the work thread tries again (monotonic)."""

    reason: str
    since: float
    tries: int = 0
    retry_at: float = 0.0

    def pause(self) -> float:
        """Seconds before the next try: 1 s doubling to a minute."""
        return float(min(LEDGER_RETRY_MAX, 2**self.tries))


def _problems(report: StatusReport) -> list[str]:
    """Why calls are not being made (account paused, galleries stopped), one line each."""
    out = []
    if report.paused:
        out.append(f"calls paused: {report.paused.get('reason', 'quota')}")
    if report.fatal:
        out.append("gallery stopped: " + ", ".join(sorted(report.fatal)))
    return out


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _poll_interval(settle: float) -> float:
    """Seconds between two snapshots of a polled root: about the settle time, within 1–10 s."""
    return min(10.0, max(1.0, settle))


def _log_changes(look: LookAgain) -> None:
    """One line per settled path (a folder counts once), at most _LOGGED_PATHS a batch; the
    scan's own line says what each turned out to be."""
    for rel in look.paths[:_LOGGED_PATHS]:
        log.info("library %s: %s settled", look.library, printable_relpath(rel))
    if len(look.paths) > _LOGGED_PATHS:
        more = len(look.paths) - _LOGGED_PATHS
        log.info(
            "library %s: … and %d more %s settled",
            look.library, more, "path" if more == 1 else "paths",
        )  # fmt: skip


# ---------------------------------------------------------------------------------------
# The stages after the watcher: scanner, ledger, sync engine, kept behind one small class so
# the daemon above reads as lifecycle only.


class ScanInterrupted(Exception):
    """The service is stopping: the scan gave up before recording anything."""


class _StopCheck:
    """A scan progress listener that ends the walk when the service stops."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping

    def update(self, entries: int) -> None:
        if self._stopping.is_set():
            raise ScanInterrupted

    def finish(self) -> None:
        """Nothing to tidy."""


class Pipeline:
    """Scanner + ledger + sync workers, as the daemon drives them."""

    def __init__(self, ledger: Ledger, client: ImageSearchClient, config: ConfigRef) -> None:
        self._ledger = ledger
        self._client = client
        #: the daemon's reference: the workers start with its snapshot of the moment
        self._config = config
        self._engine: SyncEngine | None = None
        #: the snapshot the running workers were started with
        self._started_with: Config | None = None
        #: library -> what its last scan could not see, as the last status read found it
        self.conditions: dict[str, LibraryConditions] = {}

    def start(self) -> None:
        """Start the sync workers; raises LedgerBusy when another process syncs this ledger."""
        config = self._config.current
        engine = SyncEngine(self._ledger, self._client, config)
        engine.start()
        self._engine = engine
        self._started_with = config

    def close(self) -> None:
        """Stop the workers: in-flight calls get api.timeout seconds to end."""
        if self._engine is not None:
            self._engine.stop(self._config.current.api.timeout)
            self._engine = None

    def join(self, config: Config) -> None:
        """Take the libraries ``config`` names (one host owns a library); HostRefused names
        their owner."""
        join_ledger(self._ledger, config)

    def reconfigure(self, config: Config) -> None:
        """The workers run with the snapshot they started with: when its libraries, rules
        or safety changed in ``config`` (swapped in already), restart them (in-flight calls
        end first; the ledger keeps every intent)."""
        old = self._started_with
        if old is None or (old.libraries, old.watch.delete_grace, old.safety) != (
            config.libraries, config.watch.delete_grace, config.safety,
        ):  # fmt: skip
            log.info("config reload: restarting the sync workers with the new libraries")
            self.close()
            self.start()

    def scan_changes(
        self, config: Config, looks: Sequence[LookAgain], stopping: threading.Event
    ) -> ScanResult:
        """Scan what settled and plan the intents (thread: work): a stat per path, a walk
        per folder, a whole library for a full_rescan look; the ledger's rows there follow
        the disk. Files still being written are left in ``settling_paths``, not waited for.

        Raises ScanInterrupted when `stopping` is set during a walk."""
        now = time.time()
        result = scan_paths(
            self._ledger, config, looks, now=now,
            progress=lambda _lib, _known: _StopCheck(stopping),
        )  # fmt: skip
        # what the watcher saw a person do goes ahead of a scan's backlog (fresh changes first)
        live = not any(look.full_rescan for look in looks)
        plan_pending(self._ledger, PlanRules.of(config), now, live=live)
        return result

    def replan(self, config: Config) -> None:
        """Plan again: vanished files whose delete_grace is over get their deletes."""
        plan_pending(self._ledger, PlanRules.of(config), time.time())

    def next_grace_end(self, config: Config) -> float | None:
        """Epoch seconds when the first vanished file's delete_grace ends, None if none waits."""
        with self._ledger.transaction() as session:
            first = vanished_waiting(session).first_at
        return None if first is None else first + config.watch.delete_grace

    def wake(self) -> None:
        """New intents are in the ledger: workers start now."""
        if self._engine is not None:
            self._engine.wake()

    def healthy(self) -> bool:
        """The sync workers run."""
        return self._engine is not None and self._engine.healthy()

    def queue_depth(self) -> int:
        """Intents pending in the ledger."""
        with self._ledger.transaction() as session:
            return pending_intents(session)

    def status(self, config: Config) -> StatusReport:
        """What `syncd status` would show (and keeps what each library's last scan could
        not see in ``conditions``, for health)."""
        libs = [(lib.name, lib.gallery) for lib in config.libraries]
        with self._ledger.transaction() as session:
            report = ledger_status(
                session, libs, time.time(),
                qps=config.api.rates.rate_at(time.time()), daily_budget=config.api.daily_budget,
            )  # fmt: skip
        self.conditions = report.conditions
        return report

    def snapshot(self, config: Config) -> MetricsSnapshot:
        """Ledger and call numbers for /metrics."""
        report = self.status(config)
        files = {lib.name: lib.files for lib in report.libraries}
        states = {
            (lib.name, state): n
            for lib in report.libraries
            for state, n in (
                ("synced", lib.synced), ("pending", lib.pending),
                ("failed", lib.failed), ("held", lib.held_deletes),
            )
        }  # fmt: skip
        with self._ledger.transaction() as session:
            items = items_by_state(session)
        engine = self._engine
        stats = engine.stats() if engine is not None else EngineStats({}, 0.0, None)
        return MetricsSnapshot(
            files=files,
            file_states=states,
            items=items,
            calls=stats.calls,
            queue_depth=self.queue_depth(),
            rate=stats.rate,
            last_success=stats.last_success,
            budget_used=None if report.budget is None else report.budget.used,
            budget_limit=None if report.budget is None else report.budget.limit,
            budget_paused=bool(report.paused and report.paused.get("budget")),
        )


@contextmanager
def open_pipeline(ref: ConfigRef) -> Iterator[Pipeline]:
    """Open the ledger, the client (and embedded gallery) and start the sync workers;
    on exit stop the workers (in-flight calls get api.timeout to end) and close all."""
    config = ref.current
    with ExitStack() as stack:
        ledger = open_ledger(config.ledger)
        stack.callback(ledger.close)
        client = stack.enter_context(open_client(config))
        pipeline = Pipeline(ledger, client, ref)
        pipeline.start()
        stack.callback(pipeline.close)
        yield pipeline
