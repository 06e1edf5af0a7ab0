"""Fixtures of the several-hosts tests (see ``cluster.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ledgers import LedgerChoice

from syncd.gallery.server import GalleryServer

from .cluster import Host

MakeHost = Callable[..., Host]


@pytest.fixture
def make_host(
    tmp_path: Path, gallery_server: GalleryServer, ledger_choice: LedgerChoice
) -> Iterator[MakeHost]:
    """``make_host(name, **options)``: a host on the test's shared ledger (once SQLite, once
    PostgreSQL) and gallery; every ``syncd run`` still running is stopped at the end."""
    hosts: list[Host] = []

    def make(name: str, **options: Any) -> Host:
        host = Host(tmp_path, name, gallery_server, ledger_choice, tmp_path / "state", **options)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.kill()


@pytest.fixture
def sqlite_host(tmp_path: Path, gallery_server: GalleryServer) -> Iterator[MakeHost]:
    """``make_host`` on a shared SQLite ledger only: for rules that do not depend on the
    engine."""
    hosts: list[Host] = []

    def make(name: str, **options: Any) -> Host:
        host = Host(
            tmp_path, name, gallery_server, LedgerChoice("sqlite"), tmp_path / "state", **options
        )
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.kill()
