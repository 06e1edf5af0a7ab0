"""``syncd reconcile`` (without ``--dry-run``): scan, plan, then sync until nothing is due
(README, Commands). ``--dry-run`` is ``syncd.app.dryrun``; ``retry`` and ``check`` are
beside this. Re-exports what the CLI shows of it (the scan's lines, the sync's report)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from syncd.api.baidu.galleries import GALLERY_NAMES
from syncd.config import Config, require_credentials
from syncd.gates.host_lock import SyncLock
from syncd.gates.pause import AccountState
from syncd.ledger.backlog import pending_intents, vanished_waiting
from syncd.ledger.hosts import join_ledger
from syncd.ledger.report import PlanList, failed_files_summary
from syncd.ledger.schema import Ledger, open_ledger
from syncd.pauses import AccountPause
from syncd.plan.driver import PlanRules, plan_pending
from syncd.scan.ahead import WalkAhead
from syncd.scan.scanner import (
    Progress,
    ProgressFactory,
    ScanResult,
    scan_libraries,
    select_libraries,
)
from syncd.sync.inflight import AddSpool

if TYPE_CHECKING:
    # the engine and the client (requests, the embedded server) are imported only when a
    # reconcile has something to sync: a no-change run must stay fast (benchmarks/README.md)
    from syncd.sync.engine import SyncReport as SyncReport

__all__ = [
    "FAILURES_SHOWN",
    "Progress",
    "ProgressFactory",
    "ReconcileResult",
    "ScanResult",
    "SyncProgressFactory",
    "reconcile",
    "utc_text",
]

#: failed files a reconcile lists by name (``syncd status --failed`` lists them all)
FAILURES_SHOWN = 10


@dataclass
class ReconcileResult:
    """A scan, the sync after it, and the files of those libraries that are not synced."""

    scan: ScanResult
    #: what the sync did; None when the scan left nothing to sync (no gallery was reached)
    sync: SyncReport | None
    #: files of those libraries not synced for a reason: how many, and the first few
    failures: PlanList = field(default_factory=PlanList)
    #: with nothing to sync: the account pause in force (the sync's report says it otherwise)
    pause: AccountPause | None = None

    @property
    def budget_spent(self) -> str | None:
        """The line saying the daily budget is spent (calls resume the next quota day)."""
        pause = self.pause if self.sync is None else self.sync.pause
        return pause.describe() if pause is not None and pause.budget else None

    @property
    def fatal(self) -> str | None:
        """The one line saying what the operator must fix, when calls could not go on."""
        if self.sync is None:
            return None if self.pause is None else self.pause.describe()
        if self.sync.stops:
            return next(iter(self.sync.stops.values())).advice
        if self.sync.pause is not None:
            return self.sync.pause.describe()
        return None


def reconcile(
    config: Config,
    names: Sequence[str] = (),
    *,
    allow_mass_delete: bool = False,
    progress: ProgressFactory | None = None,
    sync_progress: SyncProgressFactory | None = None,
    horizon: float | None = None,
    walks: WalkAhead | None = None,
) -> ReconcileResult:
    """Scan the libraries named (all when none), then sync until nothing is due within
    ``horizon`` seconds (default: the engine's ``IDLE_HORIZON``). Only the galleries those
    libraries feed are called. When the scan leaves nothing to sync (no intent pending for
    them, no vanished file waiting for its grace, no add whose answer was lost) none is
    reached (no embedded server, token or engine) and ``sync`` is None.

    ``progress`` shows the scan; ``sync_progress(due)`` returns what is told how many of
    the ``due`` intents were settled so far (a progress bar on a terminal). ``walks``: the
    walks already started in a child process (``syncd.scan.ahead``).

    Raises ConfigError (unusable [api]), LedgerError, LedgerBusy (another process syncs).
    """
    # said before the scan, even when nothing turns out to be due
    require_credentials(config.api)
    ledger = open_ledger(config.ledger)
    lock = SyncLock(config.ledger.path, config.host)
    try:
        lock.acquire()
        # the account and the libraries must be this host's before anything is scanned
        join_ledger(ledger, config)
        selected = select_libraries(config, names)
        galleries = sorted({lib.gallery for lib in selected}) if names else list(GALLERY_NAMES)
        now = time.time()
        scan = scan_libraries(
            ledger,
            config,
            names,
            allow_mass_delete=allow_mass_delete,
            now=now,
            progress=progress,
            walks=walks,
        )
        plan_pending(ledger, PlanRules.of(config), now)
        with ledger.transaction() as session:
            due = pending_intents(session, galleries)
            idle = due == 0 and vanished_waiting(session).files == 0
        idle = idle and AddSpool.for_host(config.ledger.path, config.host).count() == 0
        report: SyncReport | None = None
        pause: AccountPause | None = None
        if idle:
            account = AccountState(ledger, time.time, retry_stops=False)
            account.load()
            pause = account.pause()
            if sync_progress is not None:
                sync_progress(0)(0)
        else:
            report = _sync(ledger, config, galleries, lock, horizon, due, sync_progress)
        wanted = {lib.name for lib in selected}
        with ledger.transaction() as session:
            failures = failed_files_summary(session, wanted, FAILURES_SHOWN)
        return ReconcileResult(scan, report, failures, pause)
    finally:
        lock.release()
        ledger.close()


def _sync(
    ledger: Ledger,
    config: Config,
    galleries: Sequence[str],
    lock: SyncLock,
    horizon: float | None,
    due: int,
    sync_progress: SyncProgressFactory | None,
) -> SyncReport:
    """Run the sync engine against ``config``'s endpoint until nothing is due within
    ``horizon`` seconds (``due``: the intents pending now, for the progress bar)."""
    from syncd.app.gallery import open_client
    from syncd.sync.engine import IDLE_HORIZON, SyncEngine

    with open_client(config) as client:
        engine = SyncEngine(ledger, client, config, galleries=galleries, lock=lock)
        tell = sync_progress(due) if sync_progress is not None else None
        return engine.run_until_idle(IDLE_HORIZON if horizon is None else horizon, tell)


#: due intents -> a callable told how many are settled so far
SyncProgressFactory = Callable[[int], Callable[[int], None]]


def utc_text(seconds: float) -> str:
    """``seconds`` since the epoch as local ISO time for people (as the sync words it); the
    engine's module is imported here, once a sync ran (a no-change reconcile never needs it)."""
    from syncd.sync.engine import utc_text as text

    return text(seconds)
