"""`syncd ledger migrate --to URL`: this host's SQLite ledger moves into PostgreSQL.

The copy keeps every row and id, so the first reconcile after the switch costs no API call,
and the ledger goes on from there as if it had always been in PostgreSQL.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ledgers import LedgerChoice
from sqlalchemy import func, select

from syncd.gallery.server import GalleryServer
from syncd.ledger.models import Base

from .site import Site


@pytest.fixture
def synced_site(tmp_path: Path, gallery_server: GalleryServer) -> Site:
    """A SQLite site that went through adds, copies, a rename and a delete, all synced."""
    site = Site(tmp_path, gallery_server)
    for n in range(6):
        site.write(f"dir{n % 2}/{n}.jpg", 300 + n)
    shutil.copy(site.root / "dir0" / "0.jpg", site.root / "copy-of-0.jpg")
    (site.root / "broken.jpg").write_bytes(b"not an image")
    assert site.syncd("reconcile").code == 1  # broken.jpg failed, the rest is synced
    (site.root / "dir1" / "1.jpg").rename(site.root / "dir1" / "one.jpg")
    (site.root / "dir0" / "2.jpg").unlink()
    assert site.syncd("reconcile").code == 1
    return site


def row_counts(site: Site) -> dict[str, int]:
    """Table -> rows of the site's ledger."""
    ledger = site.open_ledger(create=False)
    try:
        with ledger.transaction() as session:
            return {
                table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
                for table in Base.metadata.sorted_tables
            }
    finally:
        ledger.close()


def test_first_reconcile_after_migrating_costs_no_api_call(synced_site: Site, pg_url: str) -> None:
    site = synced_site
    before = row_counts(site)

    moved = site.syncd("ledger migrate", "--to", pg_url)

    assert moved.code == 0, moved
    assert f"copied {sum(before.values())} rows into " in moved.out
    assert f'  url = "{pg_url}"' in moved.out.splitlines()
    assert f'  state_dir = "{site.ledger.parent}"' in moved.out.splitlines()
    site.switch_ledger(LedgerChoice("postgresql", pg_url))
    assert row_counts(site) == before
    site.server.reset_counts()
    again = site.syncd("reconcile")
    assert again.code == 1, again  # broken.jpg still fails, as before the move
    assert site.calls() == {}
    # the ledger goes on in PostgreSQL: new rows take ids after the copied ones
    site.write("after/new.jpg", 399)
    (site.root / "dir1" / "3.jpg").unlink()
    assert site.syncd("reconcile").code == 1
    assert site.calls() == {"add": 1, "delete": 1}
    site.assert_mirrors_disk_but("broken.jpg")


def test_migrate_refuses_a_database_that_holds_a_ledger(synced_site: Site, pg_url: str) -> None:
    assert synced_site.syncd("ledger migrate", "--to", pg_url).code == 0

    again = synced_site.syncd("ledger migrate", "--to", pg_url)

    assert again.code == 2
    assert again.out == ""
    assert len(again.err.splitlines()) == 1
    assert "the database holds a ledger already (table " in again.err


def test_migrate_never_shows_the_password(
    synced_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_LEDGER_PASSWORD", "sekrit-4711")
    # nothing listens on port 1: the connection fails, and says so without the password
    failed = synced_site.syncd("ledger migrate", "--to", "postgresql://syncd@127.0.0.1:1/x")
    assert failed.code == 2
    assert len(failed.err.splitlines()) == 1 and "cannot" not in failed.out
    assert "sekrit" not in failed.out + failed.err

    inline = synced_site.syncd("ledger migrate", "--to", "postgresql://syncd:pw-0815@db/x")
    assert inline.code == 2
    assert inline.err == (
        "--to: holds a password; put it in ledger.password_file or $SYNCD_LEDGER_PASSWORD "
        "instead\n"
    )


def test_migrate_of_a_host_already_on_postgresql_is_refused(
    tmp_path: Path, gallery_server: GalleryServer, pg_url: str
) -> None:
    site = Site(tmp_path, gallery_server, ledger=LedgerChoice("postgresql", pg_url))
    result = site.syncd("ledger migrate", "--to", pg_url)
    assert result.code == 2
    assert result.err == "ledger.url: this host's ledger is in PostgreSQL already\n"
