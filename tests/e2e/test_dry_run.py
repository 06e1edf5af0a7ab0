"""`syncd reconcile --dry-run` writes nothing: the next `syncd reconcile` reports what the
dry run did and makes the calls it planned (README, Commands)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ledgers import LedgerChoice
from sqlalchemy import select

from syncd.gallery.server import GalleryServer
from syncd.ledger.models import Base, SchemaVersion

from .site import Site


def _scan_lines(out: str) -> list[str]:
    """The per-library scan lines of a reconcile (dry or not)."""
    return [line for line in out.splitlines() if line.startswith("library ")]


def _plan(out: str) -> tuple[int, int, int]:
    """(adds, updates, deletes) of the dry run's ``plan:`` line."""
    found = re.search(r"^plan: (\d+) adds, (\d+) updates, (\d+) deletes,", out, re.M)
    assert found is not None, out
    adds, updates, deletes = map(int, found.groups())
    return adds, updates, deletes


def _assert_run_made_the_plan(dry: str, real: str, calls: dict[str, int]) -> None:
    """The real run's adds and updates are the calls the dry run planned, and it deleted
    the items the dry run planned to delete (deletes go in batches: fewer calls)."""
    adds, updates, deletes = _plan(dry)
    assert calls.get("add", 0) == adds, (calls, dry)
    assert calls.get("update", 0) == updates, (calls, dry)
    assert (calls.get("delete", 0) > 0) == (deletes > 0), (calls, dry)
    done = f"synced: {adds} added, 0 adopted, {updates} updated, {deletes} deleted;"
    assert any(line.startswith(done) for line in real.splitlines()), real


def _tables(site: Site) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ledger table, in a stable order."""
    ledger = site.open_ledger(create=False)
    try:
        with ledger.transaction() as session:
            return {
                table.name: sorted(
                    (tuple(row) for row in session.execute(select(table))), key=repr
                )
                for table in Base.metadata.sorted_tables
            }
    finally:
        ledger.close()


def test_a_dry_run_on_a_fresh_ledger_agrees_with_the_run_after_it(site: Site) -> None:
    for n in range(7):
        site.write(f"trip/{n}.jpg", n)
    site.write("copy/0.jpg", 0)  # the same image twice: one add
    (site.root / "notes.jpg").write_bytes(b"not an image")

    dry = site.syncd("reconcile", "--dry-run")

    assert dry.code == 0, dry
    assert _scan_lines(dry.out) == [
        "library photos (same_hq): 9 files: 9 new or changed, 0 unchanged, 0 vanished"
    ]
    assert _plan(dry.out) == (7, 0, 0)
    assert site.calls() == {}
    if site.ledger_choice.kind == "sqlite":
        assert not site.ledger.exists(), "a dry run on a fresh machine left a ledger behind"
    else:  # the database gets the tables, and nothing in them
        rows = _tables(site)
        assert {name for name, found in rows.items() if found} == {SchemaVersion.__tablename__}

    real = site.syncd("reconcile")

    assert _scan_lines(real.out) == _scan_lines(dry.out)
    _assert_run_made_the_plan(dry.out, real.out, site.calls())
    site.assert_mirrors_disk_but("notes.jpg")


def test_a_dry_run_leaves_every_row_of_the_ledger_as_it_was(site: Site) -> None:
    for n in range(6):
        site.write(f"{n}.jpg", n)
    assert site.syncd("reconcile").code == 0
    (site.root / "0.jpg").rename(site.root / "renamed.jpg")
    (site.root / "1.jpg").unlink()
    site.write("2.jpg", 20)  # edited
    site.write("new.jpg", 30)
    before = _tables(site)

    dry = site.syncd("reconcile", "--dry-run")

    assert dry.code == 0, dry
    assert "3 new or changed, 3 unchanged, 2 vanished" in dry.out
    assert _tables(site) == before


def test_a_dry_run_after_changes_plans_the_calls_the_next_run_makes(site: Site) -> None:
    for n in range(6):
        site.write(f"{n}.jpg", n)
    assert site.syncd("reconcile").code == 0
    site.server.reset_counts()
    (site.root / "0.jpg").rename(site.root / "renamed.jpg")  # one update
    (site.root / "1.jpg").unlink()  # one delete
    site.write("2.jpg", 20)  # edited: the new image added, the old one deleted
    site.write("new.jpg", 30)  # one add

    dry = site.syncd("reconcile", "--dry-run")
    again = site.syncd("reconcile", "--dry-run")

    assert dry.code == 0, dry
    assert again.out == dry.out, "the first dry run changed what the second saw"
    assert _scan_lines(dry.out) == [
        "library photos (same_hq): 6 files: 3 new or changed, 3 unchanged, 2 vanished"
    ]
    assert "plan: 2 adds, 1 updates, 2 deletes, 0 held deletes, 0 vanished, 0 failures" in (
        dry.out.splitlines()
    )
    assert site.calls() == {}

    real = site.syncd("reconcile")

    assert real.code == 0, real
    assert _scan_lines(real.out) == _scan_lines(dry.out)
    _assert_run_made_the_plan(dry.out, real.out, site.calls())
    site.assert_mirrors_disk()


def test_a_dry_run_lets_no_held_delete_go_and_the_run_after_it_holds_them_too(
    tmp_path: Path, gallery_server: GalleryServer, ledger_choice: LedgerChoice
) -> None:
    site = Site(tmp_path, gallery_server, max_delete_fraction=0.25, ledger=ledger_choice)
    for n in range(12):
        site.write(f"{n}.jpg", n)
    assert site.syncd("reconcile").code == 0
    gallery_server.reset_counts()
    for n in range(10):
        (site.root / f"{n}.jpg").unlink()
    before = _tables(site)

    dry = site.syncd("reconcile", "--dry-run", "--allow-mass-delete")

    assert "held deletes (10):" in dry.out.splitlines()
    assert _tables(site) == before, "the dry run held (or let go) deletes in the ledger"
    real = site.syncd("reconcile")
    assert _scan_lines(real.out) == _scan_lines(dry.out)
    assert site.calls() == {}
