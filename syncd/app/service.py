"""The service's use case: watch -> scan -> plan -> sync over the ledger, for `syncd run`.

``syncd.daemon`` keeps the process (threads, signals, listeners, systemd); it drives a
:class:`Service`, which wires the stages:

- the watcher set (:class:`Watchers`): one watchdog watch per library root feeding the settle
  aggregator, and each library's path filter;
- the :class:`Pipeline`: the ledger, the API client and the sync workers; a settled batch is
  scanned and planned into intents, which wake the workers.

Each long-lived part takes its own section of the config (``syncd.app.service_sections``) at
start and compares it on a reload: only the parts whose section changed restart or re-commit.

The ledger is the queue: nothing here holds work a crash would lose. Events only say where to
look; the scan decides what changed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from syncd.api.baidu.client import ImageSearchClient
from syncd.app.gallery import open_client
from syncd.app.service_sections import (
    EngineSection,
    LibraryRules,
    RootWatch,
    WatchTiming,
    keep_running,
)
from syncd.app.status import status_report
from syncd.config import Config, LibraryConfig
from syncd.errors import ConfigError, SyncdError
from syncd.health import (
    Counts,
    LibraryCounts,
    LibraryHealth,
    RootFacts,
    ServiceStateFile,
    WatchState,
    health_report,
    inspect_root,
    scans_reasons,
    service_state_path,
)
from syncd.ledger.backlog import items_by_state, pending_intents, vanished_waiting
from syncd.ledger.conditions import LibraryConditions
from syncd.ledger.hosts import join_ledger
from syncd.ledger.report import StatusReport
from syncd.ledger.schema import Ledger, LedgerUnavailable, open_ledger
from syncd.metrics import Health, MetricsSnapshot
from syncd.paths.filters import WalkFilter
from syncd.paths.handoff import LookAgain
from syncd.paths.relpath import printable_relpath
from syncd.plan.driver import PlanRules, plan_pending
from syncd.scan.scanner import ScanResult, scan_paths
from syncd.sync.engine import EngineStats, SyncEngine
from syncd.watch.aggregator import (
    SettleAggregator,
    SettledBatch,
    WatchRoot,
    library_path_filter,
)
from syncd.watch.observer import LibraryWatcher

log = logging.getLogger("syncd.run")

#: seconds at most between two tries of a ledger that went away
LEDGER_RETRY_MAX = 60.0
#: settled paths logged one per line in a batch; the rest are counted
_LOGGED_PATHS = 20
#: seconds after delete_grace before the replan, so the grace is surely over
_REPLAN_SLACK = 0.5


def check_config(config: Config) -> None:
    """Globs that cannot compile are config errors, named by library."""
    for lib in config.libraries:
        try:
            WalkFilter.for_library(lib, config.watch)
        except ValueError as exc:
            raise ConfigError(f"library {lib.name}: {exc}") from None


# ---------------------------------------------------------------------------------------
# The watcher set: one watch per library root, the settle aggregator, each library's filter


@dataclass
class _Library:
    """One watched library: the sections it committed, and the filter of its rules."""

    rules: LibraryRules
    watch: RootWatch
    filter: WalkFilter

    @classmethod
    def of(cls, lib: LibraryConfig, config: Config) -> _Library:
        return cls(
            LibraryRules.of(lib, config),
            RootWatch.of(lib),
            WalkFilter.for_library(lib, config.watch),
        )


class Watchers:
    """Every library root watched, events settled into batches of paths to look at again.

    Takes :class:`WatchTiming` and, per library, :class:`RootWatch` and :class:`LibraryRules`:
    on :meth:`commit` a root is re-watched only when its own watch section changed (each
    watch says so in the log: "library NAME: watching ROOT with inotify")."""

    def __init__(self, config: Config) -> None:
        self.timing = WatchTiming.of(config)
        self._agg = SettleAggregator(self.timing.settle)
        self._watcher = LibraryWatcher(
            self._agg.touch,
            self._on_missed_events,
            polling=self.timing.polling,
            poll_interval=_poll_interval(self.timing.settle),
        )
        self._libraries: dict[str, _Library] = {}

    @property
    def names(self) -> list[str]:
        """The libraries watched, in config order."""
        return list(self._libraries)

    def roots(self) -> dict[str, str]:
        """library -> its root (a copy: the supervise thread reads it while a reload runs)."""
        return {name: str(lib.watch.root) for name, lib in list(self._libraries.items())}

    def start(self, config: Config) -> None:
        """Watch every library of ``config``."""
        for lib in config.libraries:
            self._watch(lib, config)
        self._agg.set_roots(self._watch_roots())

    def commit(self, config: Config) -> list[str]:
        """Take a reloaded ``config``: each part compares its own section. Returns the
        libraries to rescan (added, or their rules or root changed)."""
        timing = WatchTiming.of(config)
        old_timing, self.timing = self.timing, timing
        if timing.settle != old_timing.settle:
            self._agg.set_settle(timing.settle)
        if timing.polling != old_timing.polling:
            log.info("config reload: watch.polling is now %s", timing.polling)
            self._watcher.set_polling(timing.polling)
        # roots polled because of an inotify limit: the limit may have been raised meanwhile
        self._watcher.retry_inotify()
        wanted = {lib.name: lib for lib in config.libraries}
        for name in [n for n in self._libraries if n not in wanted]:
            log.info("library %s: removed from the config; no longer watched", name)
            self._watcher.unwatch(name)
            del self._libraries[name]
        rescan: list[str] = []
        for name, lib in wanted.items():
            current = self._libraries.get(name)
            if current is None:
                log.info("library %s: added (%s)", name, lib.root)
                self._watch(lib, config)
                rescan.append(name)
                continue
            rules = LibraryRules.of(lib, config)
            if rules == current.rules:
                continue
            if RootWatch.of(lib) != current.watch:
                self._watch(lib, config)
            else:
                self._libraries[name] = replace(
                    current, rules=rules, filter=WalkFilter.for_library(lib, config.watch)
                )
            log.info("library %s: rules changed; rescanning", name)
            rescan.append(name)
        self._agg.set_roots(self._watch_roots())
        return rescan

    def _watch(self, lib: LibraryConfig, config: Config) -> None:
        self._libraries[lib.name] = _Library.of(lib, config)
        self._watcher.watch(lib.name, lib.root, follow_symlinks=lib.follow_symlinks)

    def _watch_roots(self) -> list[WatchRoot]:
        return [
            WatchRoot(name, os.path.abspath(lib.watch.root), library_path_filter(lib.filter))
            for name, lib in self._libraries.items()
        ]

    def _on_missed_events(self, library: str, reason: str) -> None:
        log.info("library %s: full rescan (%s)", library, reason)
        self._agg.request_rescan(library)

    # -- what the work and supervise threads call ----------------------------------------

    def request_rescan(self, library: str, *, immediate: bool = False) -> None:
        """Scan ``library`` whole (at once with ``immediate``, else after the settle time)."""
        self._agg.request_rescan(library, immediate=immediate)

    def rescan_all(self, *, immediate: bool = False) -> None:
        """Scan every library whole."""
        for name in self._libraries:
            self._agg.request_rescan(name, immediate=immediate)

    def wait_batch(self, timeout: float | None) -> SettledBatch | None:
        """The next settled batch, or None after ``timeout`` seconds (or a wake)."""
        return self._agg.wait_batch(timeout)

    def look_again_when_quiet(self, look: LookAgain) -> None:
        """Paths still being written: looked at again once quiet."""
        self._agg.look_again_when_quiet(look)

    def wake(self) -> None:
        """Release a waiting :meth:`wait_batch` (a reload, a stop)."""
        self._agg.wake()

    def watches(self, library: str) -> bool:
        """Whether ``library`` is watched now (a batch of a removed one is dropped)."""
        return library in self._libraries

    @property
    def settling(self) -> int:
        """Paths waiting to settle."""
        return self._agg.pending_count

    def modes(self) -> dict[str, str]:
        """library -> "inotify" | "polling" | "missing" (lock-free)."""
        return self._watcher.modes()

    def states(self) -> dict[str, WatchState]:
        """library -> how its root is watched now and why (lock-free)."""
        return self._watcher.states()

    def supervise(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for trouble reported by the observer, then look at every
        root (vanished, back, replaced, observer died) and restart what needs it."""
        self._watcher.wait_for_trouble(timeout)
        self._watcher.supervise()

    def close(self) -> None:
        """Stop the aggregator and every observer thread."""
        self._agg.close()
        self._watcher.close()


# ---------------------------------------------------------------------------------------
# The service


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


class Service:
    """`syncd run`'s work: the watcher set and the pipeline, one step at a time.

    The daemon enters :meth:`running`, calls :meth:`start` and :meth:`queue_reconcile`,
    then :meth:`work` from its work thread and :meth:`supervise` from its supervise thread
    until it stops, :meth:`check` and :meth:`reload` on SIGHUP (on the work thread); to stop
    it calls :meth:`halt`, joins its threads and leaves :meth:`running`."""

    def __init__(self, config: Config) -> None:
        #: the config in force: each part took its section of it
        self._config = config
        self._watchers = Watchers(config)
        #: library -> its root as the supervise thread last saw it (a hung mount stalls that
        #: thread, never /healthz)
        self._root_facts: dict[str, RootFacts] = {}
        #: how each root is watched and seen, for `syncd status` and `syncd console`
        self._state_file = ServiceStateFile(service_state_path(config))
        self._pipeline: Pipeline | None = None
        self._next_full_rescan = 0.0
        #: monotonic time of the next replan (vanished files past delete_grace), None = none due
        self._next_replan: float | None = None
        #: the ledger went away (a database restart, a failover): why, since when, and when to
        #: try it again
        self._away: LedgerAway | None = None

    @property
    def config(self) -> Config:
        """The config in force (sections a restart needs keep their running values)."""
        return self._config

    @contextmanager
    def running(self) -> Iterator[Service]:
        """Open the ledger, the client and the sync workers; on exit stop the workers
        (in-flight calls get api.timeout to end), close all and unpublish the watch state."""
        with ExitStack() as stack:
            self._pipeline = stack.enter_context(open_pipeline(self._config))
            # first on the way out: nothing is watched any more
            stack.callback(self._state_file.remove)
            yield self

    def start(self) -> None:
        """Watch every library root and look at each (for /healthz and `syncd status`)."""
        self._watchers.start(self._config)
        self.look_at_roots()

    def queue_reconcile(self) -> None:
        """Queue the start-up reconcile (a full scan of every library, before any settled
        batch) and the replan of files that vanished before this start."""
        self._watchers.rescan_all(immediate=True)
        self._schedule_full_rescan()
        self._guarded(self._arm_replan)

    def started_line(self) -> str:
        """The log line of a start: what is watched, the settle time and the delete grace."""
        watch = self._config.watch
        count = len(self._watchers.names)
        return (
            f"watching {count} librar{'y' if count == 1 else 'ies'}; settle {watch.settle:.1f} s, "
            f"delete grace {watch.delete_grace:.0f} s"
        )

    def halt(self) -> None:
        """Stop watching and release a waiting work thread (the first step of a stop)."""
        self._watchers.close()

    def healthy(self) -> bool:
        """True while the sync workers run."""
        return self._pipeline is None or self._pipeline.healthy()

    # -- the work thread -----------------------------------------------------------------

    def work(self, stopping: threading.Event) -> None:
        """One round of the work thread: wait for a settled batch or the next deadline,
        scan and plan what settled, then what is due (a full rescan, a replan, a try of a
        ledger that went away)."""
        batch = self._watchers.wait_batch(self._seconds_to_next_deadline())
        if stopping.is_set():
            return
        if batch is not None:
            self._apply(batch, stopping)
        now = time.monotonic()
        if self._config.watch.rescan_interval and now >= self._next_full_rescan:
            log.info("periodic full rescan (watch.rescan_interval)")
            self._watchers.rescan_all()
            self._schedule_full_rescan()
        if self._next_replan is not None and now >= self._next_replan:
            self._next_replan = None
            self._guarded(self._replan)
        away = self._away
        if away is not None and now >= away.retry_at:
            # try the ledger again: a full rescan finds what changed while it was away
            away.retry_at = float("inf")
            self._watchers.rescan_all(immediate=True)

    def wake(self) -> None:
        """Release the work thread from its wait (a reload is due)."""
        self._watchers.wake()

    def _apply(self, batch: SettledBatch, stopping: threading.Event) -> None:
        """Scan what settled (a full_rescan look scans its library whole), then wake the workers."""
        looks = [look for look in batch if self._watchers.watches(look.library)]
        for look in looks:
            _log_changes(look)
        if looks:
            self._guarded(self._scan_changes, looks, stopping)

    def _scan_changes(self, looks: list[LookAgain], stopping: threading.Event) -> None:
        assert self._pipeline is not None
        result = self._pipeline.scan_changes(looks, stopping)
        for lib in result.libraries:
            if lib.settling_paths:
                # looked at again once quiet: the work thread never sleeps on a writer
                self._watchers.look_again_when_quiet(LookAgain(lib.name, tuple(lib.settling_paths)))
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
        self._pipeline.replan()
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
            self._watchers.rescan_all()
        except Exception:  # one bad batch must not end the service
            log.exception("%s failed; retrying with a rescan", step.__name__.strip("_"))
            self._watchers.rescan_all()

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

    def _arm_replan(self) -> None:
        """Plan again when the first vanished file's delete_grace is over."""
        assert self._pipeline is not None
        end = self._pipeline.next_grace_end()
        if end is None:
            self._next_replan = None
            return
        self._next_replan = time.monotonic() + max(0.0, end - time.time()) + _REPLAN_SLACK

    def _seconds_to_next_deadline(self) -> float | None:
        deadlines = [d for d in (self._next_replan,) if d is not None]
        if self._away is not None:
            deadlines.append(self._away.retry_at)
        if self._config.watch.rescan_interval:
            deadlines.append(self._next_full_rescan)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _schedule_full_rescan(self) -> None:
        self._next_full_rescan = time.monotonic() + self._config.watch.rescan_interval

    # -- the supervise thread ------------------------------------------------------------

    def supervise(self, interval: float, stopping: threading.Event) -> None:
        """One round of the supervise thread: wait up to ``interval`` s (less when the
        observer reports a limit or an overflow), then look at every root."""
        self._watchers.supervise(interval)
        if not stopping.is_set():
            self.look_at_roots()

    def look_at_roots(self) -> None:
        """Look at every library root (for /healthz) and publish how each is watched."""
        roots = self._watchers.roots()
        facts = {name: inspect_root(root) for name, root in roots.items()}
        self._root_facts = facts
        self._state_file.publish(self._watchers.states(), facts)

    # -- reload --------------------------------------------------------------------------

    def check(self, new: Config) -> None:
        """Raise ConfigError when ``new`` cannot be taken (a glob that does not compile, a
        library another host owns); the running config stays then."""
        check_config(new)
        if self._pipeline is not None:
            self._pipeline.join(new)  # a library another host owns is refused here

    def reload(self, new: Config) -> None:
        """Take ``new`` (checked by :meth:`check`; on the work thread): what only a restart
        changes keeps its running value (said once as a warning), then each part compares
        its own section and restarts or re-commits only when it changed."""
        old = self._config
        new, differ = keep_running(old, new)
        for key in differ:
            log.warning("config reload: %s changes take effect after a restart", key)
        self._config = new
        rescan = self._watchers.commit(new)
        if self._pipeline is not None:
            self._guarded(self._pipeline.commit, new)
        for name in rescan:
            self._watchers.request_rescan(name, immediate=True)
        if new.watch.rescan_interval != old.watch.rescan_interval:
            self._schedule_full_rescan()
        count = len(self._watchers.names)
        log.info("config reloaded: %d librar%s", count, "y" if count == 1 else "ies")

    # -- reporting -----------------------------------------------------------------------

    def watch_modes(self) -> dict[str, str]:
        """library -> "inotify" | "polling" | "missing"."""
        return self._watchers.modes()

    @property
    def settling(self) -> int:
        """Paths waiting to settle."""
        return self._watchers.settling

    def queue_depth(self) -> int | None:
        """Intents pending in the ledger (None before the pipeline opened); may raise when
        the ledger is busy or away."""
        return None if self._pipeline is None else self._pipeline.queue_depth()

    def snapshot(self) -> MetricsSnapshot:
        """Numbers for /metrics."""
        pipeline = self._pipeline
        base = MetricsSnapshot()
        known: list[Counts] | None = None
        if pipeline is not None:
            # while the ledger is away its numbers are left out; /healthz says why
            with contextlib.suppress(LedgerUnavailable):
                base = pipeline.snapshot()
                held = base.file_states
                known = [
                    Counts(name, n, held.get((name, "held"), 0)) for name, n in base.files.items()
                ]
        libraries = self.library_health(known)
        return replace(
            base,
            watch_pending=self._watchers.settling,
            watch_modes=self._watchers.modes(),
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
            self._config, known, self._watchers.states(), self._root_facts,
            scans_reasons(scans),
        )  # fmt: skip

    def health(self, causes: Sequence[str] = ()) -> Health:
        """/healthz: 503 with one line per cause (``causes`` the daemon found, the ledger
        away, calls paused, a gallery stopped, a degraded library), else 200; the library
        states the operator accepts (``health.accept``) follow "ok"."""
        lines = list(causes)
        known: Sequence[LibraryCounts] | None = None
        away = self._away
        if away is not None:
            lines.append(f"ledger unreachable since {_utc(away.since)}: {away.reason}")
        elif self._pipeline is not None:
            try:
                report = self._pipeline.status()
            except LedgerUnavailable as exc:
                lines.append(f"ledger unreachable: {exc}")
            else:
                known = report.libraries
                lines += _problems(report)
        libraries = self.library_health(known)
        lines += [line for lib in libraries for line in lib.lines()]
        accepted = [f"accepted: {line}" for lib in libraries for line in lib.lines(accepted=True)]
        if lines:
            return Health(False, "\n".join(lines + accepted))
        return Health(True, "\n".join(["ok", *accepted]))


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
# The stages after the watcher: scanner, ledger, sync engine


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
    """Scanner + ledger + sync workers, as the service drives them.

    Holds the config it committed (:meth:`commit` takes a reloaded one); the sync workers
    run with :class:`EngineSection` of the config they started with and restart only when
    that section changes (a new rate, libraries, delete_grace, safety)."""

    def __init__(self, ledger: Ledger, client: ImageSearchClient, config: Config) -> None:
        self._ledger = ledger
        self._client = client
        self._config = config
        self._engine: SyncEngine | None = None
        #: the section the running workers were started with
        self._section: EngineSection | None = None
        #: library -> what its last scan could not see, as the last status read found it
        self.conditions: dict[str, LibraryConditions] = {}

    def start(self) -> None:
        """Start the sync workers; raises LedgerBusy when another process syncs this ledger."""
        config = self._config
        engine = SyncEngine(self._ledger, self._client, config)
        engine.start()
        self._engine = engine
        self._section = EngineSection.of(config)

    def close(self) -> None:
        """Stop the workers: in-flight calls get api.timeout seconds to end."""
        if self._engine is not None:
            self._engine.stop(self._config.api.timeout)
            self._engine = None

    def join(self, config: Config) -> None:
        """Take the libraries ``config`` names (one host owns a library); HostRefused names
        their owner."""
        join_ledger(self._ledger, config)

    def commit(self, config: Config) -> None:
        """Take a reloaded ``config``: when the workers' section changed (the rate, the
        libraries, delete_grace, safety) restart them with it (in-flight calls end first;
        the ledger keeps every intent); otherwise they run on untouched."""
        self._config = config
        section = EngineSection.of(config)
        old = self._section
        if old is not None and section == old:
            return
        what = ", ".join(old.changes(section)) if old is not None else "start"
        log.info("config reload: restarting the sync workers (%s changed)", what)
        self.close()
        self.start()

    def scan_changes(self, looks: Sequence[LookAgain], stopping: threading.Event) -> ScanResult:
        """Scan what settled and plan the intents (thread: work): a stat per path, a walk
        per folder, a whole library for a full_rescan look; the ledger's rows there follow
        the disk. Files still being written are left in ``settling_paths``, not waited for.

        Raises ScanInterrupted when `stopping` is set during a walk."""
        config = self._config
        now = time.time()
        result = scan_paths(
            self._ledger, config, looks, now=now,
            progress=lambda _lib, _known: _StopCheck(stopping),
        )  # fmt: skip
        # what the watcher saw a person do goes ahead of a scan's backlog (fresh changes first)
        live = not any(look.full_rescan for look in looks)
        plan_pending(self._ledger, PlanRules.of(config), now, live=live)
        return result

    def replan(self) -> None:
        """Plan again: vanished files whose delete_grace is over get their deletes."""
        plan_pending(self._ledger, PlanRules.of(self._config), time.time())

    def next_grace_end(self) -> float | None:
        """Epoch seconds when the first vanished file's delete_grace ends, None if none waits."""
        with self._ledger.transaction() as session:
            first = vanished_waiting(session).first_at
        return None if first is None else first + self._config.watch.delete_grace

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

    def status(self) -> StatusReport:
        """What `syncd status` would show (and keeps what each library's last scan could
        not see in ``conditions``, for health)."""
        with self._ledger.transaction() as session:
            report = status_report(session, self._config)
        self.conditions = report.conditions
        return report

    def snapshot(self) -> MetricsSnapshot:
        """Ledger and call numbers for /metrics, read in one transaction at each scrape (the
        counts the writes keep make that quick at any size: no copy is kept between)."""
        with self._ledger.transaction() as session:
            report = status_report(session, self._config)
            items = items_by_state(session)
            depth = pending_intents(session)
        self.conditions = report.conditions
        files = {lib.name: lib.files for lib in report.libraries}
        states = {
            (lib.name, state): n
            for lib in report.libraries
            for state, n in (
                ("synced", lib.synced), ("pending", lib.pending),
                ("failed", lib.failed), ("held", lib.held_deletes),
            )
        }  # fmt: skip
        engine = self._engine
        stats = engine.stats() if engine is not None else EngineStats({}, 0.0, None)
        return MetricsSnapshot(
            files=files,
            file_states=states,
            items=items,
            calls=stats.calls,
            queue_depth=depth,
            rate=stats.rate,
            last_success=stats.last_success,
            budget_used=None if report.budget is None else report.budget.used,
            budget_limit=None if report.budget is None else report.budget.limit,
            budget_paused=bool(report.paused and report.paused.get("budget")),
        )


@contextmanager
def open_pipeline(config: Config) -> Iterator[Pipeline]:
    """Open the ledger, the client (and embedded gallery) and start the sync workers;
    on exit stop the workers (in-flight calls get api.timeout to end) and close all."""
    with ExitStack() as stack:
        ledger = open_ledger(config.ledger)
        stack.callback(ledger.close)
        client = stack.enter_context(open_client(config))
        pipeline = Pipeline(ledger, client, config)
        pipeline.start()
        stack.callback(pipeline.close)
        yield pipeline
