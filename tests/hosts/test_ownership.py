"""Which host owns a library (README, Several file servers), on the ledger itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ledgers import LedgerChoice
from sqlalchemy import select

from syncd.config import LedgerConfig, LibraryConfig
from syncd.ledger.hosts import HostRefused, claim_libraries
from syncd.ledger.models import Library
from syncd.ledger.schema import Ledger, open_ledger


@pytest.fixture
def ledger(tmp_path: Path, ledger_choice: LedgerChoice) -> Iterator[Ledger]:
    where = LedgerConfig(tmp_path / "ledger.db", ledger_choice.url)
    opened = open_ledger(where if ledger_choice.url else where.path)
    yield opened
    opened.close()


def library(name: str, tmp_path: Path) -> LibraryConfig:
    return LibraryConfig(name, tmp_path / name, "same_hq")


def test_a_library_from_before_hosts_goes_to_the_first_host_naming_it(
    ledger: Ledger, tmp_path: Path
) -> None:
    with ledger.transaction() as session:
        # as schema 3 left it: no owner
        session.add(Library(name="old", gallery="same_hq", root=str(tmp_path / "old"), host=None))
    with ledger.transaction() as session:
        claim_libraries(session, "host-b", [library("old", tmp_path)])
    with ledger.transaction() as session:
        assert session.scalar(select(Library.host).where(Library.name == "old")) == "host-b"
        with pytest.raises(HostRefused, match="owned by host host-b"):
            claim_libraries(session, "host-a", [library("old", tmp_path)])
