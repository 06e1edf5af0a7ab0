"""Status: the one assembly of the status report, for ``syncd status`` (text and
``--json``), the console's overview and ``/api/status``, and the service's ``/metrics`` and
``/healthz``. The ``--json`` document and ``/api/status`` are the same document, made by
:meth:`Status.document` (its keys: docs/status.schema.json).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from syncd.config import Config
from syncd.health import LibraryHealth, current_health, with_health
from syncd.ledger.report import (
    PlanEntry,
    StatusReport,
    empty_status,
    failed_files,
    ledger_status,
    status_document,
)
from syncd.ledger.schema import open_ledger
from syncd.sync.inflight import AddSpool

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from syncd.ledger.browse import LedgerReader

__all__ = [
    "PlanEntry",
    "Status",
    "StatusReport",
    "read_status",
    "read_status_document",
    "status_report",
]


def status_report(session: Session, config: Config, now: float | None = None) -> StatusReport:
    """The ledger's part of the status at ``now`` (seconds; now when None), read in
    ``session``: every library of ``config`` (config order) and those the ledger holds that
    it no longer names, the queue (estimated at the configured rate when no call went out
    lately), the daily budget, and what each library's last scan could not see
    (``conditions``, for health). The service calls it in its own transaction."""
    when = time.time() if now is None else now
    return ledger_status(
        session,
        [(lib.name, lib.gallery) for lib in config.libraries],
        when,
        qps=config.api.rates.rate_at(when),
        daily_budget=config.api.daily_budget,
    )


@dataclass(frozen=True)
class Status:
    """The status as read at ``as_of``: the ledger's report, this host's adds whose answers
    were lost, each library's health, the rate, and (``failed``) every file not synced."""

    report: StatusReport
    #: adds of this host whose answers were lost, not settled yet (the add spool)
    unsettled_adds: int
    #: each library's health, in config order
    healths: list[LibraryHealth]
    #: the rate now and its next change (``rate`` of the document)
    rate: dict[str, object]
    #: seconds since the epoch: when the ledger was read
    as_of: float
    #: every live file not synced, with the reason; None when not asked for
    failures: list[PlanEntry] | None = None

    def document(self) -> dict[str, Any]:
        """The ``syncd status --json`` document, the console's ``/api/status``: a new dict
        each call (docs/status.schema.json names its keys)."""
        data = status_document(self.report, self.unsettled_adds, self.failures, as_of=self.as_of)
        data["rate"] = dict(self.rate)
        return with_health(data, self.healths)


def read_status(
    config: Config, reader: LedgerReader | None = None, *, failed: bool = False
) -> Status:
    """The status now. ``reader``: read-only sessions the caller keeps (the console);
    None opens the config's ledger for this one read and closes it (a command). A ledger
    that does not exist yet reads as every library with nothing yet (nothing is created).
    ``failed`` also lists every file not synced.

    Raises LedgerError (``syncd.app.errors``) when the ledger cannot be opened or read.
    """
    as_of = time.time()
    failures: list[PlanEntry] | None = [] if failed else None
    if reader is not None:
        if reader.exists():
            with reader.reading() as session:
                report = status_report(session, config, as_of)
                if failed:
                    failures = failed_files(session)
        else:
            report = _empty(config)
    elif config.ledger.exists():
        ledger = open_ledger(config.ledger, create=False)
        try:
            with ledger.transaction() as session:
                report = status_report(session, config, as_of)
                if failed:
                    failures = failed_files(session)
        finally:
            ledger.close()
    else:
        report = _empty(config)
    unsettled = AddSpool.for_host(config.ledger.path, config.host).count()
    healths = current_health(config, report.libraries, report.conditions)
    rate = config.api.rates.document(time.time())
    return Status(report, unsettled, healths, rate, as_of, failures)


def read_status_document(
    config: Config, reader: LedgerReader | None = None, *, failed: bool = False
) -> dict[str, Any]:
    """``read_status(config, reader, failed=failed).document()``: the ``status --json``
    document, read now."""
    return read_status(config, reader, failed=failed).document()


def _empty(config: Config) -> StatusReport:
    return empty_status([(lib.name, lib.gallery) for lib in config.libraries])
