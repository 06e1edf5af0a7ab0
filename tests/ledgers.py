"""Which ledger a test's config names: SQLite or PostgreSQL (the ``ledger_choice`` fixture).

Import with ``from ledgers import LedgerChoice`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LedgerChoice:
    """The ledger a test's config names: ``kind`` "sqlite" or "postgresql" (``url`` set)."""

    kind: str
    url: str = ""

    def toml_lines(self, state_dir: str) -> list[str]:
        """The ``[ledger]`` keys (without the header) for a config whose local state (and
        SQLite ledger) lives in ``state_dir`` (relative to the config file, or absolute)."""
        if self.kind == "postgresql":
            return [f'url = "{self.url}"', f'state_dir = "{state_dir}"']
        return [f'path = "{state_dir}/ledger.db"']
