"""Thumbnails: upright by their EXIF orientation, small, and a cache that keeps its bound."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from devkit.imagegen import make_image
from syncd.console.thumbs import (
    THUMB_SIDE,
    NotAnImage,
    NoThumbnail,
    ThumbnailCache,
    make_thumbnail,
    open_inside,
)
from syncd.ledger.browse import FileLocation

ORIENTATION = 0x0112


def _rotated_jpeg(path: Path) -> None:
    """A landscape picture stored with EXIF orientation 6 (shown rotated to portrait)."""
    picture = Image.open(io.BytesIO(make_image(5, size=(600, 300))))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    picture.save(path, "JPEG", exif=exif)


def test_a_thumbnail_is_upright_by_the_exif_orientation_and_small(tmp_path: Path) -> None:
    _rotated_jpeg(tmp_path / "phone.jpg")
    data = make_thumbnail(open_inside(tmp_path, "phone.jpg"))
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.height == THUMB_SIDE
        assert thumb.width == THUMB_SIDE // 2


def test_a_file_that_is_no_image_gets_no_thumbnail(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_bytes(b"not a picture")
    with pytest.raises(NotAnImage):
        make_thumbnail(open_inside(tmp_path, "notes.jpg"))
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(NoThumbnail):
        open_inside(tmp_path, "folder.jpg")


def test_the_thumbnail_cache_stays_within_its_byte_bound(tmp_path: Path) -> None:
    cache = ThumbnailCache(limit=20_000)
    for n in range(12):
        (tmp_path / f"p{n}.jpg").write_bytes(make_image(n, size=(400, 400)))
        stat = (tmp_path / f"p{n}.jpg").stat()
        location = FileLocation(n, "lib", str(tmp_path), f"p{n}.jpg", stat.st_size, 0, n)
        assert cache.get(location, tmp_path).data[:2] == b"\xff\xd8"
        assert cache.size <= 20_000
    assert cache.size > 0
