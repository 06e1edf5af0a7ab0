"""``syncd reconcile --dry-run``: scan, plan, and say what the sync would do; call nothing,
and write nothing.

The scan and the planner run as in a real reconcile, but on a rehearsal of the ledger
(``syncd.ledger.rehearsal``) that is thrown away afterwards: the ledger, its conditions,
held deletes and settings stay as they were, so the next run finds the same changes and
reports what the dry run did.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from syncd.config import Config
from syncd.ledger.hosts import join_ledger
from syncd.ledger.rehearsal import rehearsal
from syncd.ledger.report import PlanSummary, summarize_plan
from syncd.plan.driver import PlanRules, plan_pending
from syncd.scan.ahead import WalkAhead
from syncd.scan.scanner import ProgressFactory, ScanResult, scan_libraries


@dataclass
class DryRun:
    """``reconcile --dry-run``: the scan, then the pending intents the plan would leave."""

    scan: ScanResult
    plan: PlanSummary
    #: held deletes shown as what ``--allow-mass-delete`` would let go (never let go here)
    would_release: bool


def dry_run(
    config: Config,
    names: Sequence[str] = (),
    *,
    allow_mass_delete: bool = False,
    limit: int = 10,
    progress: ProgressFactory | None = None,
    walks: WalkAhead | None = None,
) -> DryRun:
    """Scan and plan on a rehearsal of the config's ledger, call nothing, summarise the
    plan; the ledger is left as it was (a SQLite ledger that does not exist yet is not
    created).

    Held deletes stay held even with ``allow_mass_delete``: a dry run only says what that
    flag would let go. ``walks``: as for :func:`scan_libraries`.

    Raises LedgerError (the ledger cannot be opened or read), HostRefused (a ConfigError:
    a library belongs to another host, or the ledger syncs another account).
    """
    with rehearsal(config.ledger) as ledger:
        # what a real run checks first: a library another host owns is refused here too
        join_ledger(ledger, config, register=False)
        now = time.time()
        scan = scan_libraries(ledger, config, names, now=now, progress=progress, walks=walks)
        plan_pending(ledger, PlanRules.of(config), now)
        with ledger.transaction() as session:
            summary = summarize_plan(session, names, limit)
    return DryRun(scan, summary, allow_mass_delete)
