"""Thumbnails of files the ledger knows, never of a path from a request.

A file is opened only when its real path (symlinks resolved) stays under the real root of
a library this host's config names, and is checked again on the open descriptor, so a
symlink swapped in between cannot lead outside. Thumbnails are JPEG, EXIF orientation
applied, kept in a cache bounded in bytes.

Only the formats the scan reads are opened. A thumbnail is decoded within the process's
decode budget (``syncd.imaging``): a JPEG at a reduced scale, other formats whole, then
converted and shrunk a band of rows at a time; an image whose decode would need more than
the whole budget gets the placeholder, with the reason.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from syncd.imaging import (
    DECODE_BUDGET,
    ImageRefused,
    TooManyPixels,
    band_converter,
    draft_size,
    held_bytes,
    kept_bytes,
    load_bytes,
    open_image,
    orientation,
    output_mode,
    readable_formats,
    scaled,
    scaling_bytes,
    upright,
)

if TYPE_CHECKING:
    from syncd.app.browse import FileLocation

#: longest side of a thumbnail, pixels
THUMB_SIDE = 256
#: bytes of thumbnails kept in memory
CACHE_BYTES = 32 * 1024 * 1024
#: files larger than this are not read for a thumbnail, bytes
MAX_SOURCE_BYTES = 64 * 1024 * 1024
#: decoded pixels at most: a decompression bomb is refused, not decoded
MAX_PIXELS = 100_000_000
#: how much smaller a frame is first reduced by whole factors (as Pillow's thumbnail)
_REDUCING_GAP = 2.0


class NoThumbnail(Exception):
    """The file cannot be shown: outside its root, gone, or not readable."""


class NotAnImage(NoThumbnail):
    """The file is there but is no image Pillow can show (a placeholder stands in)."""


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail's JPEG bytes and the ETag naming this version of it."""

    data: bytes
    etag: str


def open_inside(root: Path, relpath: str) -> int:
    """A read-only descriptor of ``root/relpath``, only when its real path is a regular
    file under the real ``root``. Raises NoThumbnail otherwise."""
    real_root = os.path.realpath(root)
    if os.path.isabs(relpath) or "\0" in relpath:
        raise NoThumbnail("not a relative path")
    real = os.path.realpath(os.path.join(real_root, relpath))
    if not _under(real, real_root):
        raise NoThumbnail("outside the library root")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise NoThumbnail(exc.strerror or "cannot open") from None
    try:
        # what was opened, not what the name meant a moment ago
        opened = os.readlink(f"/proc/self/fd/{fd}")
        if not _under(opened, real_root) or not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NoThumbnail("outside the library root")
    except OSError:
        os.close(fd)
        raise NoThumbnail("cannot check the opened file") from None
    except NoThumbnail:
        os.close(fd)
        raise
    return fd


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def thumbnail_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size of the thumbnail of an image of ``size``: within ``THUMB_SIDE`` a side,
    aspect kept (as Pillow's ``Image.thumbnail`` rounds it), never larger than the image."""
    width, height = size
    if width <= THUMB_SIDE and height <= THUMB_SIDE:
        return width, height
    aspect = width / height
    if aspect <= 1:
        return _rounded(THUMB_SIDE * aspect, lambda n: abs(aspect - n / THUMB_SIDE)), THUMB_SIDE
    return THUMB_SIDE, _rounded(THUMB_SIDE / aspect, lambda n: abs(aspect - THUMB_SIDE / n))


def _rounded(number: float, error: Callable[[int], float]) -> int:
    """``number`` rounded down or up, whichever keeps the aspect closer; at least 1."""
    return max(min(math.floor(number), math.ceil(number), key=error), 1)


def make_thumbnail(fd: int) -> bytes:
    """JPEG bytes of the image on ``fd`` (closed here), EXIF orientation applied, at most
    ``THUMB_SIDE`` pixels a side. Raises NoThumbnail for what is not a readable image
    (NotAnImage, saying why, for one too large to decode within the decode budget)."""
    try:
        with os.fdopen(fd, "rb") as handle:
            nbytes = os.fstat(handle.fileno()).st_size
            if nbytes > MAX_SOURCE_BYTES:
                raise NotAnImage("too large to preview")
            with open_image(handle, readable_formats(), MAX_PIXELS) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise NotAnImage("too many pixels to preview")
                shown = _shrink(image, nbytes)
        out = io.BytesIO()
        shown.save(out, "JPEG", quality=82)
        return out.getvalue()
    except NoThumbnail:
        raise
    except TooManyPixels:
        raise NotAnImage("too many pixels to preview") from None
    except ImageRefused as exc:
        raise NotAnImage(f"too large to preview: {exc.reason}") from None
    except Exception as exc:  # Pillow raises many kinds for broken files; all mean "no preview"
        raise NotAnImage(f"not a readable image ({type(exc).__name__})") from None


def _shrink(image: Image.Image, nbytes: int) -> Image.Image:
    """The opened ``image`` (``nbytes`` on disk) decoded within the budget (a JPEG at a
    reduced scale), converted and shrunk a band at a time, and turned upright."""
    target = thumbnail_size(image.size)
    # a JPEG is decoded at the smallest DCT scale still twice the thumbnail, as Image.thumbnail
    request = (target[0] * 2, target[1] * 2)
    jpeg = image.format in ("JPEG", "MPO")
    decoded = draft_size(image.size, request) if jpeg and target != image.size else image.size
    result = held_bytes(output_mode(image), target)
    need = max(
        load_bytes(image, decoded, nbytes),
        kept_bytes(image, decoded, nbytes)
        + scaling_bytes(decoded, target, _REDUCING_GAP, Image.Resampling.BICUBIC)
        + 2 * result,
    )
    with DECODE_BUDGET.reserve(need):
        if jpeg and target != image.size:
            image.draft("RGB", request)
        image.load()
        turn = orientation(image)  # read after loading, as TIFF turns itself upright on load
        small = scaled(
            image, target, band_converter(image), Image.Resampling.BICUBIC, _REDUCING_GAP
        )
        return upright(small, turn)


class ThumbnailCache:
    """Thumbnails by file version (id, size, mtime, inode), least recently used dropped first
    once they take more than ``limit`` bytes."""

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Thumbnail] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def etag_of(location: FileLocation) -> str:
        """The ETag of a file version's thumbnail (changes when the file changes)."""
        key = f"{location.id}:{location.size}:{location.mtime_ns}:{location.inode}:{THUMB_SIDE}"
        return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'

    def get(self, location: FileLocation, root: Path) -> Thumbnail:
        """The thumbnail of ``location`` under ``root`` (the config's root of its library)."""
        etag = self.etag_of(location)
        with self._lock:
            hit = self._entries.get(etag)
            if hit is not None:
                self._entries.move_to_end(etag)
                return hit
        thumb = Thumbnail(make_thumbnail(open_inside(root, location.relpath)), etag)
        with self._lock:
            if etag not in self._entries and len(thumb.data) <= self._limit:
                self._entries[etag] = thumb
                self._bytes += len(thumb.data)
                while self._bytes > self._limit:
                    _, dropped = self._entries.popitem(last=False)
                    self._bytes -= len(dropped.data)
        return thumb

    @property
    def size(self) -> int:
        """Bytes of thumbnails held."""
        return self._bytes
