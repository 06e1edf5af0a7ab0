"""The status is assembled once (syncd.app.status): `syncd status --json`, the console's
/api/status and a read through a console's reader are the same document, and the report the
service reads in its own transaction is the one they show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from e2e.site import STATUS_KEPT, STATUS_PICTURES, Site, status_site
from sqlalchemy import select

from syncd.app.browse import open_reader
from syncd.app.errors import LedgerError
from syncd.app.status import read_status, read_status_document, status_report
from syncd.config import load_config
from syncd.console.server import ConsoleServer
from syncd.gallery.server import GalleryServer
from syncd.ledger.models import Content, File
from syncd.ledger.queue import record_failure


def _timeless(document: dict[str, Any]) -> dict[str, Any]:
    """The document as JSON reads it back, without when it was read (two reads are a moment
    apart)."""
    return {key: value for key, value in json.loads(json.dumps(document)).items() if key != "as_of"}


@pytest.fixture
def site(tmp_path: Path, gallery_server: GalleryServer) -> Site:
    """Two libraries synced by real reconciles: a refused file, held deletes."""
    return status_site(tmp_path, gallery_server)


def test_status_json_the_consoles_api_status_and_a_readers_read_are_one_document(
    site: Site,
) -> None:
    config = load_config(site.config)
    shown = site.syncd("status", "--json")
    assert shown.code == 0, shown.err
    from_cli = json.loads(shown.out)
    reader = open_reader(config)
    try:
        from_reader = read_status_document(config, reader)
    finally:
        reader.close()
    with ConsoleServer(config) as server:
        answer = requests.get(f"{server.url}/api/status", timeout=30)
    assert answer.status_code == 200
    assert _timeless(from_cli) == _timeless(from_reader) == _timeless(answer.json())
    photos = from_cli["libraries"][0]
    assert (photos["name"], photos["failed"], photos["held_deletes"]) == (
        "photos",
        1,
        STATUS_PICTURES - STATUS_KEPT,
    )
    assert "failed" not in from_cli and "as_of" in from_cli


def test_failed_adds_every_file_not_synced_to_the_same_document(site: Site) -> None:
    config = load_config(site.config)
    shown = json.loads(site.syncd("status", "--json", "--failed").out)
    status = read_status(config, failed=True)
    assert status.failures is not None
    assert [(f.library, f.path) for f in status.failures] == [("photos", "broken.jpg")]
    assert _timeless(status.document()) == _timeless(shown)
    assert read_status(config).failures is None


def test_failed_lists_every_live_copy_of_an_item_whose_call_failed(site: Site) -> None:
    site.write("copy.jpg", 1, root=site.tmp_path / "shop")  # the picture of photos' p01
    site.syncd("reconcile")
    ledger = site.open_ledger(create=False)
    try:
        with ledger.transaction() as session:
            (item_id,) = session.scalars(
                select(Content.item_id)
                .join(File, File.content_hash == Content.content_hash)
                .where(File.relpath == "pics/p01.jpg")
            )
            record_failure(session, item_id, "test", 216201, "image format error", 0.0, None)
    finally:
        ledger.close()
    status = read_status(load_config(site.config), failed=True)
    assert status.failures is not None
    assert [(f.library, f.path, f.detail) for f in status.failures] == [
        ("photos", "broken.jpg", "not an image (cannot identify image file)"),
        ("photos", "pics/p01.jpg", "error 216201: image format error"),
        ("shop", "copy.jpg", "error 216201: image format error"),
    ]
    shown = json.loads(site.syncd("status", "--json", "--failed").out)
    assert _timeless(status.document()) == _timeless(shown)


def test_the_services_report_in_its_own_transaction_is_the_one_shown(site: Site) -> None:
    config = load_config(site.config)
    ledger = site.open_ledger(create=False)
    try:
        with ledger.transaction() as session:
            report = status_report(session, config)
    finally:
        ledger.close()
    shown = read_status(config)
    assert report.libraries == shown.report.libraries
    assert report.unconfigured == shown.report.unconfigured
    assert set(report.conditions) == set(shown.report.conditions) == {"photos", "shop"}


def test_before_any_ledger_every_library_reads_empty_and_none_is_made(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    site = Site(tmp_path, gallery_server, extra_libraries=("shop",))
    config = load_config(site.config)
    reader = open_reader(config)
    try:
        through_reader = read_status(config, reader)
    finally:
        reader.close()
    opened = read_status(config)
    for status in (through_reader, opened):
        assert [(lib.name, lib.files, lib.items) for lib in status.report.libraries] == [
            ("photos", 0, 0),
            ("shop", 0, 0),
        ]
    assert not config.ledger.path.exists()


def test_a_ledger_that_cannot_be_opened_is_a_ledger_error(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    site = Site(tmp_path, gallery_server)
    config = load_config(site.config)
    config.ledger.path.parent.mkdir(parents=True, exist_ok=True)
    config.ledger.path.write_bytes(b"not a SQLite database, not at all" * 100)
    with pytest.raises(LedgerError):
        read_status(config)
    shown = site.syncd("status")
    assert shown.code == 2 and shown.err.strip()
