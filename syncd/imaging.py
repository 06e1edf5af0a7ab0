"""Decoding images within one memory budget for the whole process.

Why: a file's size says nothing about what it decodes to. A 171 KB palette PNG of
16000x11000 px is 168 MiB as Pillow holds it, and 672 MiB more once converted to RGB. So
every path that decodes an image (the scan's preparation, the console's thumbnails and
search uploads, the local gallery's add and search) first works out what its decode will
hold at its peak, refuses what is over ``DECODE_BUDGET_BYTES`` with one line naming both
figures, and holds that much of ``DECODE_BUDGET`` while it decodes. Sync workers, console
requests and the embedded gallery's threads share the one budget, so together they never
hold more than it in decoded pixels: a decode that does not fit yet waits its turn (first
come, first served); one that could never fit is refused, not left waiting.

What a decode is charged (bytes; measured with Pillow 13 and the libraries it links):

- the frame as Pillow holds it (``held_bytes``): 1 a pixel for "1", "L" and "P", 2 for
  16-bit grey, 4 for every other mode (RGB is kept as RGBX, and LA as four bytes too);
- what the format's decoder holds beside the frame while it loads (``load_bytes``):
  a progressive or multi-scan JPEG keeps every DCT coefficient of the full-size image
  (2 bytes each) even when decoded at a reduced scale; libtiff one strip or tile, and a
  second frame when Pillow turns a tagged TIFF upright; libwebp two RGBA canvases and a
  copy of the frame; libheif and libavif the YUV planes and an interleaved copy; openjpeg
  32-bit samples; the QOI decoder two copies. Only the first frame of an animated GIF,
  APNG, WebP or a multi-page TIFF is ever decoded;
- what Pillow allocates while merely opening a few formats (``open_cost``): a GIF's
  first-frame disposal buffer, an ICO's embedded image (Pillow decodes it on open), the
  copies of the file the WebP, HEIF and AVIF readers make; a GIF or ICO whose header
  already shows too many pixels is refused before it is opened;
- what the caller makes from the frame while the frame and what its reader keeps are
  still held (``kept_bytes``): its result, and the rows it converts at a time
  (``scaling_bytes``). ``scaled`` converts and shrinks a frame a band of rows at a time,
  so a palette, 1-bit or 16-bit image is never converted to RGB whole.

Pillow's PNG, GIF and BMP decoders have no reduced-scale decode, so their full frame is
charged as it is; JPEG is decoded at a reduced scale (``draft``) by its callers.

Importing this module fixes glibc's mmap threshold at 1 MiB for the process (unless
``MALLOC_MMAP_THRESHOLD_`` is set): glibc otherwise learns to serve ever larger blocks
from the heap of the thread that asks, and keeps what is freed there for that heap's
reuse, so decodes on many threads (workers, console, gallery) leave the process holding
several decodes' worth of freed pixels. With the threshold fixed, every block of 1 MiB or
more (image rows, decoders' buffers) is its own mapping, given back to the system when
freed, and the process's memory follows what the budget holds.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Final

from PIL import Image

__all__ = [
    "BAND_PIXELS",
    "DECODE_BUDGET",
    "DECODE_BUDGET_BYTES",
    "DecodeBudget",
    "ImageRefused",
    "OpenCost",
    "TooManyPixels",
    "band_converter",
    "draft_size",
    "forget_open_buffers",
    "held_bytes",
    "kept_bytes",
    "load_bytes",
    "mib",
    "open_cost",
    "open_image",
    "opening",
    "orientation",
    "output_mode",
    "readable_formats",
    "scaled",
    "scaling_bytes",
    "upright",
]

#: bytes of decoded images the whole process may hold at once, and so the most one decode
#: may need. A 24-megapixel phone HEIC (7.5 bytes a pixel while libheif decodes it) fits;
#: beside what ``syncd run`` holds of its own (about 110 MiB with its console and embedded
#: gallery, and its requests) the service stays under 400 MB
DECODE_BUDGET_BYTES: Final = 208 * 1024 * 1024
#: source pixels converted at a time by ``scaled``
BAND_PIXELS: Final = 1 << 19
#: what a decoder and Python hold besides the pixels (buffers, tables, the stream)
_DECODER_SLACK: Final = 4 * 1024 * 1024

#: formats opened at all: each has a real signature (no guessing on arbitrary bytes), and
#: none runs an external program (EPS and PDF would start Ghostscript)
_WANTED_FORMATS: Final = (
    "JPEG", "PNG", "GIF", "BMP", "MPO", "WEBP", "TIFF", "AVIF", "HEIF", "JPEG2000", "PPM", "QOI",
    "ICO",
)  # fmt: skip
_EXIF_ORIENTATION: Final = 0x0112
#: EXIF orientation -> the transpose that turns the pixels upright (as ImageOps.exif_transpose)
_UPRIGHT: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
#: how far (in source pixels at scale 1) each filter reaches, as Pillow's resampling
_SUPPORT: Final = {
    Image.Resampling.NEAREST: 1.0,
    Image.Resampling.BOX: 0.5,
    Image.Resampling.BILINEAR: 1.0,
    Image.Resampling.HAMMING: 1.0,
    Image.Resampling.BICUBIC: 2.0,
    Image.Resampling.LANCZOS: 3.0,
}
#: GIF blocks read looking for the first image before the file is called corrupt
_GIF_MAX_BLOCKS: Final = 1 << 16
#: glibc's mallopt parameter number of the mmap threshold, and the threshold set (bytes)
_M_MMAP_THRESHOLD: Final = -3
_MMAP_THRESHOLD: Final = 1 << 20


def _give_freed_blocks_back() -> None:
    """Fix glibc's mmap threshold (module docstring); nothing elsewhere (musl, macOS)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return  # the operator chose
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


_give_freed_blocks_back()


class ImageRefused(Exception):
    """The image cannot be decoded within the budget; ``reason`` is one line saying why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def mib(nbytes: int) -> int:
    """``nbytes`` in whole MiB, rounded up (a need is never shown smaller than it is)."""
    return -(-nbytes // (1024 * 1024))


class DecodeBudget:
    """A byte-counting semaphore: decodes hold their peak while they run, at most ``total``
    bytes together, served in the order they asked."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._held = 0
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._mine = threading.local()

    @property
    def held(self) -> int:
        """Bytes held by decodes running now."""
        with self._cond:
            return self._held

    @property
    def waiting(self) -> int:
        """Decodes waiting for their turn now."""
        with self._cond:
            return len(self._queue)

    def check(self, need: int) -> None:
        """Raise ImageRefused when a decode needing ``need`` bytes could never run."""
        if need > self.total:
            raise ImageRefused(
                f"decoding it needs {mib(need)} MiB, over the limit of {mib(self.total)} MiB"
            )

    @contextmanager
    def reserve(self, need: int) -> Iterator[None]:
        """Hold ``need`` bytes for the ``with`` block, waiting until they are free.

        Raises ImageRefused when ``need`` is over the whole budget. A thread holds one
        reservation at a time (a second one could wait for itself forever).
        """
        self.check(need)
        if need <= 0:
            yield
            return
        if getattr(self._mine, "holding", False):
            raise RuntimeError("a decode reservation is already held by this thread")
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or self._held + need > self.total:
                    self._cond.wait()
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()  # the next in line may fit beside this one
            self._held += need
        self._mine.holding = True
        try:
            yield
        finally:
            self._mine.holding = False
            with self._cond:
                self._held -= need
                self._cond.notify_all()


#: the process's one budget
DECODE_BUDGET: Final = DecodeBudget(DECODE_BUDGET_BYTES)


@functools.cache
def readable_formats() -> tuple[str, ...]:
    """The wanted formats this Pillow build reads, in the order they are tried (loads all
    plugins and registers pillow-heif's HEIF opener, once, on the first image opened)."""
    from PIL import features

    Image.init()
    # after init: AVIF files with a generic "mif1" brand must reach Pillow's AVIF first
    from pillow_heif import register_heif_opener

    register_heif_opener(thumbnails=False)
    # a Pillow without libavif registers AVIF but identifies nothing with it
    return tuple(
        name
        for name in _WANTED_FORMATS
        if name in Image.OPEN and (name != "AVIF" or features.check("avif"))
    )


def held_bytes(mode: str, size: tuple[int, int]) -> int:
    """Bytes Pillow keeps for an image of ``mode`` and ``size`` (pixels)."""
    if mode in ("1", "L", "P"):
        per_pixel = 1
    elif mode.startswith("I;16"):
        per_pixel = 2
    else:
        per_pixel = 4
    return size[0] * size[1] * per_pixel


@dataclass(frozen=True)
class OpenCost:
    """What opening a file costs before anything is decoded: ``nbytes`` Pillow allocates
    meanwhile, and the image's ``pixels`` when the header shows them that early (GIF, ICO;
    else 0)."""

    nbytes: int
    pixels: int = 0
    #: the formats the header is one of, as Pillow names them
    formats: tuple[str, ...] = ()


class TooManyPixels(ImageRefused):
    """The header shows more pixels than the caller takes (``pixels`` over ``limit``)."""

    def __init__(self, pixels: int, limit: int) -> None:
        self.pixels = pixels
        self.limit = limit
        super().__init__(f"{pixels} px, over the limit of {limit} px")


def open_cost(source: IO[bytes]) -> OpenCost:
    """What merely opening the file on ``source`` costs (its position is kept): Pillow
    allocates a GIF's first-frame disposal buffer, decodes an ICO's largest embedded image,
    and the WebP, HEIF and AVIF readers copy the whole file.

    Raises ImageRefused for a GIF whose first image cannot be found within reason.
    """
    start = source.tell()
    try:
        head = source.read(16)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return _gif_open_cost(source, start, head)
        if head[:4] == b"\0\0\1\0":
            return _ico_open_cost(source, start, head)
        if head[8:12] == b"WEBP" or head[4:8] == b"ftyp":  # WebP, HEIF, AVIF: read whole
            webp = head[8:12] == b"WEBP"
            return OpenCost(2 * (source.seek(0, 2) - start), 0,
                            ("WEBP",) if webp else ("HEIF", "AVIF"))  # fmt: skip
        return OpenCost(0)
    except (OSError, struct.error):
        return OpenCost(0)  # Pillow's own open will say what is wrong with it
    finally:
        source.seek(start)


@contextmanager
def opening(
    source: IO[bytes], max_pixels: int = 0, formats: tuple[str, ...] = ()
) -> Iterator[None]:
    """Hold what opening the file on ``source`` costs (``open_cost``) in the budget for the
    ``with`` block. Raises TooManyPixels first when the header already shows more than
    ``max_pixels`` (0: no limit), ImageRefused when opening would be over the budget. A
    file of none of ``formats`` (when given) costs nothing: Pillow will not open it."""
    cost = open_cost(source)
    if formats and not set(cost.formats) & set(formats):
        cost = OpenCost(0)
    if max_pixels and cost.pixels > max_pixels:
        raise TooManyPixels(cost.pixels, max_pixels)
    with DECODE_BUDGET.reserve(cost.nbytes):
        yield


def _gif_open_cost(source: IO[bytes], start: int, head: bytes) -> OpenCost:
    """A GIF's first frame with disposal 2 or 3 gets a buffer of its size at open; the
    image is as large as its screen, or its first frame where that reaches further."""
    screen_width, screen_height = struct.unpack("<HH", head[6:10])
    flags = head[10]
    pos = start + 13 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
    disposal = 0
    for _ in range(_GIF_MAX_BLOCKS):
        source.seek(pos)
        kind = source.read(2)
        if kind[:1] == b",":
            descriptor = kind[1:] + source.read(8)
            if len(descriptor) < 9:
                return OpenCost(0)
            left, top, width, height = struct.unpack("<HHHH", descriptor[:8])
            pixels = max(screen_width, left + width) * max(screen_height, top + height)
            return OpenCost(width * height if disposal >= 2 else 0, pixels, ("GIF",))
        if kind[:1] != b"!" or len(kind) < 2:
            return OpenCost(0)  # the trailer or garbage: Pillow finds no frame to prepare for
        pos += 2
        while True:  # the extension's sub-blocks, each led by its length
            source.seek(pos)
            length = source.read(1)
            if not length:
                return OpenCost(0)
            if kind[1] == 0xF9 and length[0] >= 1:
                disposal = (source.read(1)[0] >> 2) & 7
            pos += 1 + length[0]
            if length[0] == 0:
                break
    raise ImageRefused(f"corrupt GIF (no image within its first {_GIF_MAX_BLOCKS} blocks)")


def _ico_open_cost(source: IO[bytes], start: int, head: bytes) -> OpenCost:
    """Pillow decodes an ICO's largest embedded image on open: a PNG (4 bytes a pixel at
    most), or a bitmap with its mask and alpha (12)."""
    count = struct.unpack("<H", head[4:6])[0]
    source.seek(start + 6)
    directory = source.read(16 * count)
    largest = cost = 0
    for index in range(len(directory) // 16):
        offset = struct.unpack("<I", directory[index * 16 + 12 : index * 16 + 16])[0]
        source.seek(start + offset)
        data = source.read(24)
        if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
            width, height = struct.unpack(">II", data[16:24])
            per_pixel = 4
        elif len(data) >= 12:
            width, height = struct.unpack("<ii", data[4:12])
            width, height, per_pixel = abs(width), abs(height) // 2, 12
        else:
            continue
        largest = max(largest, width * height)
        cost = max(cost, width * height * per_pixel)
    return OpenCost(cost, largest, ("ICO",))


def open_image(source: IO[bytes], formats: tuple[str, ...], max_pixels: int = 0) -> Image.Image:
    """``Image.open(source, formats=formats)`` within the budget (``opening``).

    Raises ImageRefused (TooManyPixels) when the header shows it is too large to open,
    and whatever ``Image.open`` raises. The first frame decodes as usual; later frames of
    a GIF lose the disposal buffer they would be drawn on (callers decode the first only).
    """
    with opening(source, max_pixels, formats):
        image = Image.open(source, formats=formats)
        forget_open_buffers(image)
    return image


def forget_open_buffers(image: Image.Image) -> None:
    """Free what Pillow allocated on open and the first frame never uses (GIF disposal)."""
    if image.format == "GIF":
        image.dispose = None  # type: ignore[attr-defined]


def draft_size(size: tuple[int, int], requested: tuple[int, int]) -> tuple[int, int]:
    """The size a JPEG of ``size`` decodes at after ``draft(mode, requested)``: libjpeg's
    DCT scaling by the largest of 1/8, 1/4, 1/2 that keeps it at least ``requested``."""
    ratio = min(size[0] // max(1, requested[0]), size[1] // max(1, requested[1]))
    scale = next((s for s in (8, 4, 2) if ratio >= s), 1)
    return -(-size[0] // scale), -(-size[1] // scale)


def load_bytes(image: Image.Image, decoded: tuple[int, int] | None = None, nbytes: int = 0) -> int:
    """Bytes held at the peak of ``image.load()`` of its first frame (call it before any
    ``draft``): the frame at ``decoded`` size (a JPEG's draft size; default its size) plus
    what the format's decoder holds beside it (module docstring). ``nbytes`` is the file's
    size: the WebP, HEIF and AVIF readers keep copies of the file."""
    fmt = image.format or ""
    size = decoded or image.size
    pixels = size[0] * size[1]
    frame = held_bytes(image.mode, size)
    extra = 0
    if fmt in ("JPEG", "MPO"):
        extra = _jpeg_coefficient_bytes(image, image.size)
    elif fmt == "TIFF":
        extra = _tiff_extra_bytes(image, frame)
    elif fmt == "WEBP":
        extra = 12 * pixels + 2 * nbytes  # two RGBA canvases in libwebp, the frame's bytes
    elif fmt == "HEIF":  # measured 7.3 to 7.5 bytes a pixel in all, 8.4 with alpha
        per_pixel = 3.5 + (1 if "A" in image.mode else 0) + (1 if _bit_depth(image) > 8 else 0)
        extra = int(per_pixel * pixels) + 2 * nbytes
    elif fmt == "AVIF":
        extra = 12 * pixels + 2 * nbytes
    elif fmt == "JPEG2000":
        extra = 8 * len(image.getbands()) * pixels
    elif fmt == "QOI":
        extra = 2 * len(image.getbands()) * pixels
    return frame + extra + _DECODER_SLACK


def kept_bytes(image: Image.Image, decoded: tuple[int, int] | None = None, nbytes: int = 0) -> int:
    """Bytes held once ``image`` is loaded, for as long as it stays open: the frame at
    ``decoded`` size (default its size) and what the format's reader keeps for later frames
    (libwebp's two canvases, libavif's YUV planes, their copies of the ``nbytes`` file)."""
    size = decoded or image.size
    pixels = size[0] * size[1]
    frame = held_bytes(image.mode, size)
    if image.format == "WEBP":
        return frame + 8 * pixels + nbytes
    if image.format == "AVIF":
        return frame + 3 * pixels + nbytes
    if image.format == "HEIF":
        return frame + nbytes
    return frame


def _bit_depth(image: Image.Image) -> int:
    depth = image.info.get("bit_depth", 8)
    return depth if isinstance(depth, int) else 8


def _jpeg_coefficient_bytes(image: Image.Image, size: tuple[int, int]) -> int:
    """The whole-image coefficient buffer libjpeg keeps for a progressive or multi-scan
    JPEG (2 bytes a coefficient, each component at its sampling), else 0."""
    layers = getattr(image, "layer", None)
    if not layers:
        return 0
    if not image.info.get("progressive") and _jpeg_first_scan_components(image) >= len(layers):
        return 0
    h_max = max(layer[1] for layer in layers)
    v_max = max(layer[2] for layer in layers)
    total = 0
    for _, h_samp, v_samp, _ in layers:
        blocks_wide = -(-size[0] * h_samp // (8 * h_max))
        blocks_high = -(-size[1] * v_samp // (8 * v_max))
        # libjpeg rounds each component up to whole MCUs
        blocks_wide = -(-blocks_wide // h_samp) * h_samp
        blocks_high = -(-blocks_high // v_samp) * v_samp
        total += blocks_wide * blocks_high * 64 * 2
    return total


def _jpeg_first_scan_components(image: Image.Image) -> int:
    """Components in the JPEG's first scan (fewer than the image has: more scans follow,
    and libjpeg buffers the whole image); 0 when it cannot be read (assume the worst)."""
    source = getattr(image, "fp", None)
    if source is None:
        return 0
    start = source.tell()
    try:
        source.seek(0)
        if source.read(2) != b"\xff\xd8":
            return 0
        for _ in range(4096):
            marker = source.read(2)
            while marker[:1] == b"\xff" and marker[1:] == b"\xff":  # fill bytes
                marker = marker[1:] + source.read(1)
            if len(marker) < 2 or marker[0] != 0xFF:
                return 0
            length_bytes = source.read(2)
            if len(length_bytes) < 2:
                return 0
            if marker[1] == 0xDA:
                count = source.read(1)
                return count[0] if count else 0
            source.seek(int.from_bytes(length_bytes, "big") - 2, 1)
        return 0
    except (OSError, ValueError):
        return 0
    finally:
        source.seek(start)


def _tiff_extra_bytes(image: Image.Image, frame: int) -> int:
    """libtiff's buffer of one strip or tile (compressed files), and a second frame when
    Pillow turns the image upright on load."""
    tags = getattr(image, "tag_v2", None)
    if tags is None:
        return frame
    extra = 0
    if tags.get(_EXIF_ORIENTATION, 1) in _UPRIGHT:
        extra += frame
    if tags.get(259, 1) != 1:  # compressed: read through libtiff's buffer
        bits = tags.get(258, (8,))
        bits = tuple(bits) if isinstance(bits, tuple) else (int(bits),)
        samples = max(len(bits), int(tags.get(277, 1) or 1))
        per_pixel = -(-max(bits) * samples // 8)  # a strip as stored
        if tags.get(259) in (6, 7) or tags.get(262) == 6:  # JPEG, YCbCr: libtiff's RGBA
            per_pixel = max(per_pixel, 4)
        if 322 in tags and 323 in tags:
            block = int(tags[322]) * int(tags[323])
        else:
            rows = int(tags.get(278, image.height) or image.height)
            block = image.width * min(max(rows, 1), image.height)
        extra += block * per_pixel
    return extra


def scaling_bytes(
    size: tuple[int, int],
    target: tuple[int, int],
    reducing_gap: float | None = None,
    resample: Image.Resampling = Image.Resampling.LANCZOS,
) -> int:
    """Bytes ``scaled`` holds beside its source and its result: one band of source rows
    converted (and reduced), and the window of reduced rows it resamples from."""
    fx, fy = _reduce_factors(size, target, reducing_gap)
    reduced_width = -(-size[0] // fx)
    scale_y = size[1] / fy / max(1, target[1])
    window_rows, _ = _window(reduced_width, scale_y, resample)
    chunk = max(BAND_PIXELS, fx * fy)
    window = window_rows * reduced_width
    # a band: its crop, converted, alpha flattened (RGBA, white, mask), reduced; the reduced
    # rows kept, the window made of them and resampled across, and its part of the result;
    # and what the allocator keeps of bands freed while the next is made
    return 24 * chunk + 12 * window + 8 * target[0] * max(1, window_rows) + _DECODER_SLACK


def _reduce_factors(
    size: tuple[int, int], target: tuple[int, int], reducing_gap: float | None
) -> tuple[int, int]:
    """Integer factors a resize first reduces by, as Pillow's ``reducing_gap`` does."""
    if not reducing_gap or size == target:
        return 1, 1
    return (
        max(1, int(size[0] / max(1, target[0]) / reducing_gap)),
        max(1, int(size[1] / max(1, target[1]) / reducing_gap)),
    )


def _window(reduced_width: int, scale_y: float, resample: Image.Resampling) -> tuple[int, int]:
    """Rows of reduced source resampled at a time, and the output rows they make."""
    support = _SUPPORT[resample] * max(scale_y, 1.0) + 2
    out_rows = max(1, int(BAND_PIXELS / max(1, reduced_width) / max(scale_y, 1.0)))
    return math.ceil(out_rows * scale_y + 2 * support) + 1, out_rows


class _ReducedRows:
    """Rows of an image converted and reduced by integer factors, made in order on demand a
    band (``rows_per_band`` reduced rows, about ``BAND_PIXELS`` source pixels) at a time;
    rows no longer asked for are let go. ``width`` and ``height``: the reduced size."""

    def __init__(
        self,
        image: Image.Image,
        convert: Callable[[Image.Image], Image.Image],
        factors: tuple[int, int],
    ) -> None:
        self._image = image
        self._convert = convert
        self._fx, self._fy = factors
        self.width = -(-image.width // self._fx)
        self.height = -(-image.height // self._fy)
        self.rows_per_band = max(1, BAND_PIXELS // (image.width * self._fy))
        columns = max(1, BAND_PIXELS // (self._fy * self.rows_per_band))
        self._tile = max(self._fx, columns // self._fx * self._fx)
        self._bands: deque[tuple[int, Image.Image]] = deque()
        self._next = 0

    def rows(self, top: int, bottom: int) -> Image.Image:
        """Reduced rows ``top`` to ``bottom`` (not included); ``top`` never goes back."""
        while self._bands and self._bands[0][0] + self._bands[0][1].height <= top:
            self._bands.popleft()
        while self._next < bottom:
            first, last = self._next, min(self.height, self._next + self.rows_per_band)
            self._bands.append((first, self._band(first, last)))
            self._next = last
        first, band = self._bands[0]
        if len(self._bands) == 1 or first + band.height >= bottom:
            return band.crop((0, top - first, self.width, bottom - first))
        window = Image.new(band.mode, (self.width, bottom - top))
        for first, band in self._bands:
            if first >= bottom:
                break
            window.paste(band.crop((0, max(0, top - first), self.width, band.height)),
                         (0, max(0, first - top)))  # fmt: skip
        return window

    def _band(self, first: int, last: int) -> Image.Image:
        """Reduced rows ``first`` to ``last``, made from their source rows in tiles."""
        top, bottom = first * self._fy, min(self._image.height, last * self._fy)
        out: Image.Image | None = None
        for left in range(0, self._image.width, self._tile):
            right = min(self._image.width, left + self._tile)
            piece = self._convert(self._image.crop((left, top, right, bottom)))
            if (self._fx, self._fy) != (1, 1):
                piece = piece.reduce((self._fx, self._fy))
            if right - left == self._image.width:
                return piece
            if out is None:
                out = Image.new(piece.mode, (self.width, last - first))
            out.paste(piece, (left // self._fx, 0))
        assert out is not None
        return out


def scaled(
    image: Image.Image,
    target: tuple[int, int],
    convert: Callable[[Image.Image], Image.Image],
    resample: Image.Resampling = Image.Resampling.LANCZOS,
    reducing_gap: float | None = None,
    reduce_by: int = 0,
) -> Image.Image:
    """``image`` (loaded) converted by ``convert`` and resized to ``target``, a band of rows
    at a time, so that only ``scaling_bytes`` are held beside the source and the result.

    ``convert`` turns a band of ``image``'s rows into a mode Pillow resamples ("L", "RGB",
    ...) pixel by pixel (a palette lookup, a fixed scale, a flattening), so bands make what
    the whole would. ``reducing_gap`` reduces by integer factors first, as Pillow's resize;
    ``reduce_by`` (over 1) reduces by that factor on both axes instead, each pixel of the
    result the mean of a square of source pixels: with ``target`` the source's size divided
    by it (rounded up), nothing is resampled at all, the quickest way to a smaller picture.
    """
    if reduce_by > 1:
        fx = fy = reduce_by
    else:
        fx, fy = _reduce_factors(image.size, target, reducing_gap)
    rows = _ReducedRows(image, convert, (fx, fy))
    if target == (rows.width, rows.height):
        out: Image.Image | None = None
        for top in range(0, rows.height, rows.rows_per_band):
            part = rows.rows(top, min(rows.height, top + rows.rows_per_band))
            if out is None:
                if part.height == rows.height:
                    return part
                out = Image.new(part.mode, target)
            out.paste(part, (0, top))
        assert out is not None
        return out
    box_width, box_height = image.width / fx, image.height / fy
    scale_y = box_height / target[1]
    support = _SUPPORT[resample] * max(scale_y, 1.0) + 2
    _, out_rows = _window(rows.width, scale_y, resample)
    out = None
    for y0 in range(0, target[1], out_rows):
        y1 = min(target[1], y0 + out_rows)
        top = max(0, int(y0 * scale_y - support))
        bottom = min(rows.height, math.ceil(y1 * scale_y + support))
        window = rows.rows(top, bottom)
        box = (0.0, y0 * scale_y - top, box_width, min(y1 * scale_y, box_height) - top)
        part = window.resize((target[0], y1 - y0), resample, box=box)
        if out is None:
            out = Image.new(part.mode, target)
        out.paste(part, (0, y0))
    assert out is not None
    return out


def orientation(image: Image.Image) -> int:
    """The image's EXIF orientation (2..8), or 1 when upright, untagged or unreadable."""
    try:
        value = image.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # a broken EXIF block is not worth refusing the image for
        return 1
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def upright(image: Image.Image, turn: int) -> Image.Image:
    """``image`` turned upright from EXIF orientation ``turn`` (1: as it is)."""
    method = _UPRIGHT.get(turn)
    return image if method is None else image.transpose(method)


def _has_alpha(image: Image.Image) -> bool:
    """Whether the image has transparency to flatten."""
    return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info


def _is_wide_gray(image: Image.Image) -> bool:
    """16/32-bit integer or float grey, which Pillow's convert to "L" would clip."""
    return image.mode.startswith("I") or image.mode == "F"


def _gray_factor(image: Image.Image) -> float:
    """What a 16/32-bit or float grey frame's samples are multiplied by to make 8 bits,
    from the whole frame's range: floats up to 1.0 are fractions, and 32-bit samples
    within 0..255 already are 8-bit values; 16-bit samples always lose their low byte."""
    if image.mode in ("F", "I"):
        top = image.getextrema()[1]
        if image.mode == "F":
            return 255.0 if isinstance(top, (int, float)) and top <= 1.0 else 1 / 256
        return 1 / 256 if isinstance(top, (int, float)) and top > 255 else 1.0
    return 1 / 256


def _to_8bit_gray(image: Image.Image, factor: float) -> Image.Image:
    """A 16/32-bit or float grey image as 8-bit "L", its samples multiplied by ``factor``."""
    wide = image if image.mode in ("I", "F") else image.convert("I")
    if factor != 1.0:
        wide = wide.point(lambda v: v * factor)
    return wide.convert("L")


def output_mode(image: Image.Image) -> str:
    """The mode ``band_converter`` makes of ``image``'s rows: "RGB" or "L"."""
    if image.mode in ("RGB", "L"):
        return image.mode
    if not _has_alpha(image) and (_is_wide_gray(image) or image.mode == "1"):
        return "L"
    return "RGB"


def _to_output_mode(image: Image.Image, gray_factor: float) -> Image.Image:
    """The image (or a band of its rows) in "RGB" or "L", transparency flattened onto
    white; wide grey multiplied by ``gray_factor`` (``_gray_factor`` of the whole frame)."""
    if image.mode in ("RGB", "L"):
        return image
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if _is_wide_gray(image):
        return _to_8bit_gray(image, gray_factor)
    if image.mode == "1":
        return image.convert("L")
    return image.convert("RGB")


def band_converter(image: Image.Image) -> Callable[[Image.Image], Image.Image]:
    """For ``scaled``: bands of the loaded frame ``image`` in "RGB" or "L"
    (``output_mode``), transparency flattened onto white, 16/32-bit and float grey
    scaled to 8 bits by the whole frame's range (Pillow's own convert would clip it)."""
    factor = _gray_factor(image) if _is_wide_gray(image) and not _has_alpha(image) else 1.0
    return lambda band: _to_output_mode(band, factor)
