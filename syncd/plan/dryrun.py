"""``syncd reconcile --dry-run``: scan, plan, and say what the sync would do; call nothing.

The scan records what it saw and the planner writes the intents, as in a real reconcile
(the ledger is syncd's memory either way); only the calls are left out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from syncd.config import Config
from syncd.ledger.report import PlanSummary, summarize_plan
from syncd.ledger.schema import Ledger
from syncd.plan.driver import PlanRules, plan_pending
from syncd.scan.ahead import WalkAhead
from syncd.scan.scanner import ProgressFactory, ScanResult, scan_libraries


@dataclass
class DryRun:
    """``reconcile --dry-run``: the scan, then the pending intents it left in the ledger."""

    scan: ScanResult
    plan: PlanSummary
    #: held deletes shown as what ``--allow-mass-delete`` would let go (never let go here)
    would_release: bool


def dry_run(
    ledger: Ledger,
    config: Config,
    names: Sequence[str] = (),
    *,
    allow_mass_delete: bool = False,
    limit: int = 10,
    progress: ProgressFactory | None = None,
    walks: WalkAhead | None = None,
) -> DryRun:
    """Scan (file rows and intents are the ledger's memory), call nothing, summarise the plan.

    Held deletes stay held even with ``allow_mass_delete``: a dry run only says what that
    flag would let go. ``walks``: as for :func:`scan_libraries`.
    """
    now = time.time()
    scan = scan_libraries(ledger, config, names, now=now, progress=progress, walks=walks)
    plan_pending(ledger, PlanRules.of(config), now)
    with ledger.transaction() as session:
        summary = summarize_plan(session, names, limit)
    return DryRun(scan, summary, allow_mass_delete)
