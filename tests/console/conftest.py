"""Fixtures of the web console's tests: a real installation (library folder, config, ledger
made by a real ``syncd reconcile`` against the real local gallery) and its console served
over loopback by waitress.

The installation (``world``): 14 pictures synced, ``broken.jpg`` refused (not an image),
then 11 pictures removed at once, so their deletes are held (docs/rules.md, Mass deletes); a
few API calls recorded for the chart. The console's password is ``PASSWORD``.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e.site import Site
from ledgers import LedgerChoice

from syncd.config import Config, load_config
from syncd.console.server import ConsoleServer
from syncd.gallery.server import GalleryServer
from syncd.ledger.calls import record_calls
from syncd.ledger.schema import open_ledger

PASSWORD = "correct horse battery staple"
#: pictures written and synced; the first KEPT stay, the others vanish in one scan
PICTURES = 14
KEPT = 3
#: ``api.qps_schedule`` of ``scheduled_world``: two rates a day on the account's clock
#: (UTC+8), so whatever the hour a change comes next
SCHEDULE = "00:00,3 12:00,10"


@dataclass
class World:
    """An installation with a console: its site, config and the console's base URL."""

    site: Site
    config: Config
    server: ConsoleServer

    @property
    def url(self) -> str:
        return self.server.url


def build_site(
    tmp_path: Path,
    gallery: GalleryServer,
    *,
    password: bool = True,
    ledger: LedgerChoice | None = None,
) -> Site:
    """The installation described in the module docstring, made by real commands, on a
    SQLite ledger or the one ``ledger`` names."""
    site = Site(tmp_path, gallery, max_delete_fraction=0.25)
    if ledger is not None:
        text = site.config.read_text(encoding="utf-8")
        keys = "\n".join(ledger.toml_lines("./state"))
        site.config.write_text(text.replace('path = "./state/ledger.db"', keys), encoding="utf-8")
    for seed in range(1, PICTURES + 1):
        site.write(f"pics/p{seed:02d}.jpg", seed)
    (site.root / "broken.jpg").write_bytes(b"this is not a picture at all")
    first = site.syncd("reconcile")
    assert first.code == 1, first  # broken.jpg failed
    for seed in range(KEPT + 1, PICTURES + 1):
        (site.root / f"pics/p{seed:02d}.jpg").unlink()
    second = site.syncd("reconcile")
    assert "held" in second.out, second
    lines = ["[console]", 'listen = "127.0.0.1:0"']
    if password:
        (tmp_path / "console-password").write_text(PASSWORD + "\n", encoding="utf-8")
        lines.append('password_file = "./console-password"')
    with site.config.open("a", encoding="utf-8") as config:
        config.write("\n".join(lines) + "\n")
    opened = open_ledger(load_config(site.config).ledger, create=False)
    try:
        with opened.transaction() as session:
            minute = int(time.time() // 60)
            for back, calls in ((1, 12), (5, 30), (20, 7)):
                record_calls(session, "test-host", minute - back, calls)
    finally:
        opened.close()
    return site


def free_port() -> int:
    """A loopback TCP port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(process: subprocess.Popen[str], port: int, seconds: float = 60) -> None:
    """Return once ``process`` accepts connections on loopback ``port``; fail with its
    stderr if it exits first, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            time.sleep(0.2)


@pytest.fixture
def world(tmp_path: Path, gallery_server: GalleryServer) -> Iterator[World]:
    """The installation and its console (password ``PASSWORD``), serving."""
    site = build_site(tmp_path, gallery_server)
    config = load_config(site.config)
    with ConsoleServer(config) as server:
        yield World(site, config, server)


@pytest.fixture
def pg_world(tmp_path: Path, gallery_server: GalleryServer, pg_url: str) -> Iterator[World]:
    """The installation on a PostgreSQL ledger, and its console (password ``PASSWORD``)."""
    site = build_site(tmp_path, gallery_server, ledger=LedgerChoice("postgresql", pg_url))
    config = load_config(site.config)
    with ConsoleServer(config) as server:
        yield World(site, config, server)


@pytest.fixture
def open_world(tmp_path: Path, gallery_server: GalleryServer) -> Iterator[World]:
    """The installation and its console on loopback without a password."""
    site = build_site(tmp_path, gallery_server, password=False)
    config = load_config(site.config)
    with ConsoleServer(config) as server:
        yield World(site, config, server)


@pytest.fixture
def scheduled_world(tmp_path: Path, gallery_server: GalleryServer) -> Iterator[World]:
    """The installation with ``api.qps_schedule = SCHEDULE``, and its console (password
    ``PASSWORD``)."""
    site = build_site(tmp_path, gallery_server)
    text = site.config.read_text(encoding="utf-8")
    site.config.write_text(
        text.replace("[api]\n", f'[api]\nqps_schedule = "{SCHEDULE}"\n', 1), encoding="utf-8"
    )
    config = load_config(site.config)
    with ConsoleServer(config) as server:
        yield World(site, config, server)
