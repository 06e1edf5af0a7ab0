"""Fixtures of the end-to-end tests (see ``site.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.gallery.server import GalleryServer

from .site import Site


@pytest.fixture
def site(tmp_path: Path, gallery_server: GalleryServer) -> Site:
    """A site on the shared ``gallery_server`` (no faults, no deletion latency)."""
    return Site(tmp_path, gallery_server)
