"""A library's conditions (what its last scan could not see, and why) survive in the ledger,
on both engines, and a row another syncd garbled reads as nothing to say."""

from __future__ import annotations

from pathlib import Path

from ledgers import LedgerChoice
from sqlalchemy import select

from ledger.world import World
from syncd.ledger.conditions import (
    LibraryConditions,
    MissingMount,
    RootCondition,
    UnreadableFolder,
    conditions_by_library,
    load_conditions,
    store_conditions,
)
from syncd.ledger.models import Library
from syncd.ledger.settings import put_setting

SEEN = LibraryConditions(
    "photos",
    root_device=2049,
    mounts=(("archive2019", 52), ("scans/ünicode", 53)),
    root=RootCondition("device_changed", "library root /srv/p is on another filesystem", 8, 52, 40),
    missing_mounts=(MissingMount("archive2019", 52, "not_mounted", 10),),
    unreadable=(UnreadableFolder("locked", "cannot open directory: permission denied", 1),),
)


def test_conditions_come_back_as_stored(tmp_path: Path, ledger_choice: LedgerChoice) -> None:
    world = World(tmp_path, ledger=ledger_choice)
    try:
        world.scan()  # the library's row
        with world.ledger.transaction() as session:
            library_id = session.scalar(select(Library.id).where(Library.name == "photos"))
            assert library_id is not None
            store_conditions(session, library_id, SEEN, world.clock)
        with world.ledger.transaction() as session:
            assert load_conditions(session, library_id, "photos") == SEEN
            assert conditions_by_library(session) == {"photos": SEEN}
        assert SEEN.files_kept == 8 and not SEEN.clear
        assert SEEN.reasons() == [
            "library root /srv/p is on another filesystem: its 8 files are kept",
            "mount point archive2019 (device 0:52) is not mounted: its 10 files are kept",
            "locked cannot be read (cannot open directory: permission denied): its 1 file is kept",
        ]
    finally:
        world.close()


def test_a_garbled_row_reads_as_nothing_to_say(tmp_path: Path) -> None:
    world = World(tmp_path)
    try:
        world.scan()
        with world.ledger.transaction() as session:
            library_id = session.scalar(select(Library.id).where(Library.name == "photos"))
            assert library_id is not None
            key = f"library_conditions:{library_id}"
            put_setting(session, key, '{"library": "photos", "root": 7}', 0.0)
        with world.ledger.transaction() as session:
            assert load_conditions(session, library_id, "photos") == LibraryConditions("photos")
            assert LibraryConditions("photos").clear
            assert conditions_by_library(session) == {}
        world.scan()  # the next scan writes them again
        with world.ledger.transaction() as session:
            assert conditions_by_library(session)["photos"].clear
    finally:
        world.close()
