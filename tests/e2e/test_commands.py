"""`syncd search`, `syncd check` and the embedded gallery, end to end (README, Commands)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ledgers import LedgerChoice

from devkit.imagegen import make_image, reencode, rescale
from syncd.gallery.server import GalleryServer
from syncd.gates.host_lock import SyncLock

from .site import SIDE, Site


def test_search_names_the_local_files_of_the_best_hit(site: Site, tmp_path: Path) -> None:
    site.write("beach/sunset.jpg", 11)
    site.write("city.jpg", 12)
    (site.root / "beach" / "copy.jpg").write_bytes(
        (site.root / "beach" / "sunset.jpg").read_bytes()
    )
    assert site.syncd("reconcile").code == 0
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(reencode(make_image(11, size=(SIDE, SIDE)), quality=60))
    result = site.syncd("search", str(probe), "--json")
    assert result.code == 0, result
    hits = json.loads(result.out)
    assert set(hits[0]) == {"score", "cont_sign", "brief", "paths"}
    assert sorted(hits[0]["paths"]) == sorted(
        str(site.root / p) for p in ("beach/sunset.jpg", "beach/copy.jpg")
    )
    assert hits[0]["score"] >= 0.9
    text = site.syncd("search", str(probe), "--top", "1")
    assert text.code == 0 and str(site.root / "beach") in text.out


def test_search_min_score_keeps_a_rescaled_copy_and_leaves_out_hits_below_it(
    site: Site, tmp_path: Path
) -> None:
    original = site.write("beach/sunset.jpg", 11).read_bytes()
    site.write("city.jpg", 12)
    assert site.syncd("reconcile").code == 0
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(rescale(original, 3.0))
    hits = json.loads(site.syncd("search", str(probe), "--json").out)
    score = hits[0]["score"]
    assert 0.5 <= score < 1.0 and hits[0]["paths"] == [str(site.root / "beach/sunset.jpg")]
    kept = site.syncd("search", str(probe), "--min-score", f"{score - 0.01:.4f}", "--json")
    assert kept.code == 0, kept
    assert [hit["cont_sign"] for hit in json.loads(kept.out)] == [hits[0]["cont_sign"]]
    above = site.syncd("search", str(probe), "--min-score", f"{min(score + 0.001, 1.0):.4f}")
    assert above.code == 1, above
    assert above.out == "" and "no hit scoring" in above.err
    wrong = site.syncd("search", str(probe), "--min-score", "1.5")
    assert wrong.code == 2 and "--min-score" in wrong.err


def test_search_text_names_the_library_of_each_file(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    site = Site(tmp_path, gallery_server, extra_libraries=("archive",))
    picture = site.write("beach/sunset.jpg", 11).read_bytes()
    (tmp_path / "archive" / "old.jpg").write_bytes(picture)
    assert site.syncd("reconcile").code == 0
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(picture)
    result = site.syncd("search", str(probe), "--top", "1")
    assert result.code == 0, result
    rows = sorted(line.split()[1:] for line in result.out.splitlines())
    assert rows == [
        ["archive", str(tmp_path / "archive" / "old.jpg")],
        ["photos", str(site.root / "beach/sunset.jpg")],
    ]


def test_search_hides_items_syncd_deleted_that_the_gallery_still_shows(
    tmp_path: Path, ledger_choice: LedgerChoice
) -> None:
    server = GalleryServer(tmp_path / "gallery", delete_latency=3600.0)
    server.start()
    try:
        site = Site(tmp_path, server, ledger=ledger_choice)
        site.write("keep.jpg", 1)
        gone = site.write("gone.jpg", 2).read_bytes()
        assert site.syncd("reconcile").code == 0
        (site.root / "gone.jpg").unlink()
        assert site.syncd("reconcile").code == 0
        probe = tmp_path / "probe.jpg"
        probe.write_bytes(gone)
        result = site.syncd("search", str(probe), "--json")
        assert result.code == 1
        assert json.loads(result.out) == []
    finally:
        server.stop()


def test_search_with_a_file_that_is_not_an_image_exits_2(site: Site, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("not a picture")
    result = site.syncd("search", str(bogus))
    assert result.code == 2
    assert result.err.strip().startswith(str(bogus))
    assert len(result.err.strip().splitlines()) == 1


def test_reconcile_refuses_while_another_process_syncs_the_ledger(site: Site) -> None:
    site.write("a.jpg", 1)
    site.ledger.parent.mkdir(parents=True, exist_ok=True)
    with SyncLock(site.ledger):
        result = site.syncd("reconcile")
    assert result.code == 2
    assert "another syncd process" in result.err
    assert site.calls() == {}
    assert site.syncd("reconcile").code == 0


def test_reconcile_without_keys_for_a_remote_gallery_exits_2_before_scanning(
    tmp_path: Path, gallery_server: GalleryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNCD_API_KEY", raising=False)
    monkeypatch.delenv("SYNCD_SECRET_KEY", raising=False)
    (tmp_path / "photos").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[api]\nendpoint = "{gallery_server.url}"\n[ledger]\npath = "./ledger.db"\n'
        '[[library]]\nname = "photos"\nroot = "./photos"\ngallery = "similar"\n',
        encoding="utf-8",
    )
    from click.testing import CliRunner

    from syncd.cli import cli

    result = CliRunner().invoke(cli, ["reconcile", "-c", str(config)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "api.api_key and api.secret_key must both be set "
        "(or $SYNCD_API_KEY, $SYNCD_SECRET_KEY, api.secret_key_file)"
    ]
    assert not (tmp_path / "ledger.db").exists()


def test_check_passes_for_a_working_setup(site: Site) -> None:
    site.write("first.jpg", 1)  # an empty root is a wrong root to check
    result = site.syncd("check")
    assert result.code == 0, result
    assert "ok  gallery same_hq" in result.out


def test_check_names_refused_keys_and_exits_3(tmp_path: Path) -> None:
    server = GalleryServer(tmp_path / "gallery", api_key="right-ak", secret_key="right-sk")
    server.start()
    try:
        site = Site(tmp_path, server)
        result = site.syncd("check")
        assert result.code == 3
        assert "FAILED" in result.err and "api.api_key" in result.err
        assert "test-sk" not in result.out + result.err
    finally:
        server.stop()


def test_check_of_an_uninitialized_gallery_says_what_to_do(
    site: Site, gallery_server: GalleryServer
) -> None:
    gallery_server.faults.not_initialized = frozenset({"same_hq"})
    result = site.syncd("check")
    assert result.code == 3
    assert "create the gallery in the Baidu console" in result.err


def test_check_of_a_broken_config_exits_2(site: Site) -> None:
    site.config.write_text(site.config.read_text() + "\n[api2]\nx = 1\n")
    result = site.syncd("check")
    assert result.code == 2
    assert "api2" in result.err


def test_embedded_gallery_keeps_its_data_beside_the_ledger(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    for n in range(3):
        (root / f"{n}.jpg").write_bytes(make_image(n, size=(SIDE, SIDE)))
    config = tmp_path / "config.toml"
    config.write_text(
        '[api]\nendpoint = "embedded"\n[ledger]\npath = "./state/ledger.db"\n'
        '[watch]\nsettle = 0.0\n[[library]]\nname = "photos"\nroot = "./photos"\n'
        'gallery = "similar"\n',
        encoding="utf-8",
    )
    from click.testing import CliRunner

    from syncd.cli import cli

    first = CliRunner().invoke(cli, ["reconcile", "-c", str(config)])
    assert first.exit_code == 0, first.output
    assert "3 added" in first.stdout
    assert (tmp_path / "state" / "gallery").is_dir()
    again = CliRunner().invoke(cli, ["reconcile", "-c", str(config)])
    assert again.exit_code == 0 and "0 API calls" in again.stdout
    found = CliRunner().invoke(cli, ["search", "-c", str(config), str(root / "1.jpg"), "--json"])
    assert found.exit_code == 0
    assert json.loads(found.stdout)[0]["paths"] == [str(root / "1.jpg")]


@pytest.mark.slow
def test_reconcile_against_a_gallery_that_keeps_failing_exits_1(site: Site) -> None:
    # every call fails transiently: the items wait on a backoff, which is not "synced"
    site.write("a.jpg", 1)
    site.server.faults.transient_rate = 1.0
    result = site.syncd("reconcile")
    assert result.code == 1, result.out + result.err
    assert "waiting: 1 call (" in result.out
    site.server.faults.transient_rate = 0.0
    assert site.items() == []


def test_reconcile_names_the_first_ten_failed_files_by_path_and_counts_the_rest(
    tmp_path: Path, gallery_server: GalleryServer, ledger_choice: LedgerChoice
) -> None:
    site = Site(tmp_path, gallery_server, ledger=ledger_choice, extra_libraries=("scans",))
    site.write("good.jpg", 1)
    for n in range(7):
        (site.root / f"notes{6 - n}.jpg").write_text(f"not a picture {n}")
    for n in range(5):
        (tmp_path / "scans" / f"page{n}.jpg").write_text(f"not a scan {n}")
    result = site.syncd("reconcile")
    assert result.code == 1, result
    failed = result.out[result.out.index("failed:") :].splitlines()
    reason = "not an image (cannot identify image file)"
    assert failed == [
        "failed: 12 files",
        *(f"  photos/notes{n}.jpg: {reason}" for n in range(7)),
        *(f"  scans/page{n}.jpg: {reason}" for n in range(3)),
        "  … and 2 more (syncd status --failed)",
    ]
    # a reconcile of one library says only its own
    result = site.syncd("reconcile", "--library", "scans")
    assert result.code == 1, result
    failed = result.out[result.out.index("failed:") :].splitlines()
    assert failed == ["failed: 5 files", *(f"  scans/page{n}.jpg: {reason}" for n in range(5))]
