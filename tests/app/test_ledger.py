"""The ledger's own commands as use cases (syncd.app.ledger): releasing a host gone for
good, and what a migration refuses before it copies anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.site import Site

from syncd.app.errors import ConfigError, LedgerError
from syncd.app.ledger import MigrateError, check_migrate_source, release_host
from syncd.app.status import read_status
from syncd.config import load_config
from syncd.gallery.server import GalleryServer


@pytest.fixture
def site(tmp_path: Path, gallery_server: GalleryServer) -> Site:
    site = Site(tmp_path, gallery_server)
    site.write("a.jpg", 1)
    assert site.syncd("reconcile").code == 0
    return site


def test_a_host_seen_lately_is_released_only_by_force(site: Site) -> None:
    config = load_config(site.config)
    me = config.host.name
    with pytest.raises(ConfigError, match="seen"):
        release_host(config, me)
    assert [h.name for h in read_status(config).report.hosts] == [me]
    assert release_host(config, me, force=True) == ["photos"]
    assert read_status(config).report.hosts == []
    with pytest.raises(ConfigError, match="not in this ledger"):
        release_host(config, me, force=True)


def test_releasing_without_a_ledger_makes_none(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    config = load_config(Site(tmp_path, gallery_server).config)
    with pytest.raises(LedgerError):
        release_host(config, "anyone")
    assert not config.ledger.path.exists()


def test_a_migration_needs_this_hosts_sqlite_ledger(
    site: Site, tmp_path: Path, gallery_server: GalleryServer
) -> None:
    config = load_config(site.config)
    assert check_migrate_source(config) == config.ledger.path
    (tmp_path / "fresh").mkdir()
    fresh = load_config(Site(tmp_path / "fresh", gallery_server).config)
    with pytest.raises(MigrateError, match="no ledger to migrate"):
        check_migrate_source(fresh)
