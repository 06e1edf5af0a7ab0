"""Fixtures shared by every test package.

- ``gallery_server``: a started local gallery server (real HTTP on loopback) with its
  store in ``tmp_path / "gallery"``, API Key ``test-ak`` and Secret Key ``test-sk``.
  Change ``gallery_server.faults`` fields to inject faults while it runs.
- ``make_image``: ``imagegen.make_image`` (seed, size=(64, 64), fmt="JPEG") -> bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from imagegen import make_image as _make_image

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
    """imagegen.make_image: make_image(seed, size=(64, 64), fmt="JPEG") -> encoded bytes."""
    return _make_image
