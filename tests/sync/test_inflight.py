"""The spool of adds whose answers are not recorded yet: written whole, read back, private."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from syncd.sync.inflight import AddSpool


def test_spooled_add_reads_back_with_what_was_sent(tmp_path: Path) -> None:
    spool = AddSpool.beside(tmp_path / "ledger.db")
    spool.keep("similar", "ab" * 32, '{"lib":"p","path":"a.jpg"}', (7, 9), 100.0, b"\xff\xd8\n\x00")
    spool.keep("same_hq", "cd" * 32, '{"lib":"p","path":"b.jpg"}', (), 50.0, b"PNG")

    entries = spool.entries()

    assert [(e.gallery, e.brief, e.tags, e.sent_at, e.data) for e in entries] == [
        ("same_hq", '{"lib":"p","path":"b.jpg"}', (), 50.0, b"PNG"),
        ("similar", '{"lib":"p","path":"a.jpg"}', (7, 9), 100.0, b"\xff\xd8\n\x00"),
    ]
    assert spool.directory == tmp_path / "ledger.db.inflight"
    assert stat.S_IMODE(spool.directory.stat().st_mode) == 0o700


def test_dropped_add_is_forgotten_and_dropping_twice_is_harmless(tmp_path: Path) -> None:
    spool = AddSpool(tmp_path / "spool")
    spool.keep("similar", "ab" * 32, "{}", (), 1.0, b"x")
    spool.drop("similar", "ab" * 32)
    spool.drop("similar", "ab" * 32)
    assert spool.entries() == []


def test_half_written_and_unreadable_spool_files_are_removed(tmp_path: Path) -> None:
    spool = AddSpool(tmp_path / "spool")
    spool.keep("similar", "ab" * 32, "{}", (), 1.0, b"x")
    (spool.directory / "similar-cut.add.tmp").write_bytes(b'{"gallery": "sim')
    (spool.directory / "similar-junk.add").write_bytes(b"not json\nbytes")
    (spool.directory / "similar-empty.add").write_bytes(b'{"gallery": "similar"}\n')

    entries = spool.entries()

    assert [e.content_hash for e in entries] == ["ab" * 32]
    assert sorted(p.name for p in spool.directory.iterdir()) == [f"similar-{'ab' * 32}.add"]


def test_missing_spool_folder_holds_nothing(tmp_path: Path) -> None:
    assert AddSpool(tmp_path / "never-made").entries() == []


def test_a_folder_that_cannot_take_images_is_said_once_and_adds_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "ledger.db.inflight"
    blocked.write_text("a file where the folder should be")
    spool = AddSpool(blocked)

    with caplog.at_level(logging.INFO, logger="syncd.sync"):
        kept = [spool.keep("similar", f"{n:064x}", "{}", (), 1.0, b"x") for n in range(3)]
        blocked.unlink()
        kept.append(spool.keep("similar", "ff" * 32, "{}", (), 1.0, b"x"))

    assert kept == [False, False, False, True]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot keep the images of adds" in warnings[0]
    assert any("kept in" in r.getMessage() and "again" in r.getMessage() for r in caplog.records)
    assert [e.content_hash for e in spool.entries()] == ["ff" * 32]
