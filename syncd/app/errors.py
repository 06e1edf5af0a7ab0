"""The errors the use cases raise that a door tells apart (a usage or setup problem, an API
problem), gathered from the stages that raise them so no door imports a stage for them.
Importing this module loads the ledger's (SQLAlchemy): a door imports it inside the
command that needs it."""

from __future__ import annotations

from syncd.errors import ApiError, ConfigError, SyncdError
from syncd.gates.host_lock import LedgerBusy
from syncd.ledger.schema import LedgerError

__all__ = ["ApiError", "ConfigError", "LedgerBusy", "LedgerError", "SyncdError"]
