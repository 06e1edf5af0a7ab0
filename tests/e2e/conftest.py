"""Fixtures of the end-to-end tests (see ``site.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ledgers import LedgerChoice

from syncd.gallery.server import GalleryServer

from .site import Site


@pytest.fixture
def site(tmp_path: Path, gallery_server: GalleryServer, ledger_choice: LedgerChoice) -> Site:
    """A site on the shared ``gallery_server`` (no faults, no deletion latency), once on a
    SQLite ledger and once on a PostgreSQL one."""
    return Site(tmp_path, gallery_server, ledger=ledger_choice)
