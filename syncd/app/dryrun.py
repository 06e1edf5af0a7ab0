"""``syncd reconcile --dry-run``: scan and plan on a rehearsal of the ledger that is thrown
away, call nothing, say what the sync would do (``syncd.plan.dryrun`` does the rehearsal)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from syncd.config import Config
from syncd.plan.dryrun import DryRun
from syncd.plan.dryrun import dry_run as rehearse

if TYPE_CHECKING:
    from syncd.scan.ahead import WalkAhead
    from syncd.scan.scanner import ProgressFactory

__all__ = ["DryRun", "dry_run"]


def dry_run(
    config: Config,
    names: Sequence[str] = (),
    *,
    allow_mass_delete: bool = False,
    progress: ProgressFactory | None = None,
    walks: WalkAhead | None = None,
) -> DryRun:
    """Scan the libraries ``names`` (all when none) and plan, on a rehearsal of the config's
    ledger: the scan's lines, the plan summarised (the first 10 of each part), and whether
    ``allow_mass_delete`` would let held deletes go (they stay held). The ledger is left as
    it was; a SQLite ledger that does not exist yet is not created.

    Raises LedgerError (``syncd.app.errors``), ConfigError (a library belongs to another
    host, or the ledger syncs another account)."""
    return rehearse(
        config, names, allow_mass_delete=allow_mass_delete, progress=progress, walks=walks
    )
