"""Bad and awkward image files for the preparation tests, each made on first use.

``Corpus(dir).path(name)`` writes the file called ``name`` (a key of ``BUILDERS``) into
``dir`` once and returns its path. Large images are made cheaply (solid fills, upscaled
small pictures, or a valid header over almost no data) so the suite stays fast.

``BOMBS`` are hostile files, small on disk and huge decoded (a 171 KB palette PNG of
16000x11000 px, multi-frame GIF, APNG and TIFF, ...). They are written chunk by chunk
(zlib over a repeated row, LZW over a run), so making one never holds its pixels.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from devkit.imagegen import decode, encode, make_image

#: bytes of a JPEG that is within the pixel limits but over the 3 MiB raw limit
HEAVY_JPEG_RANGE = (int(3.3 * 2**20), 4 * 2**20)
#: the 100-megapixel JPEG: decoding it in full takes 12000 * 8400 * 4 bytes in Pillow
HUGE_JPEG_SIZE = (12000, 8400)


def picture(seed: int, size: tuple[int, int]) -> Image.Image:
    """A realistic RGB test picture (``imagegen``) as a Pillow image.

    Large sizes are drawn at a tenth and scaled up: drawing them in full is slow.
    """
    if max(size) <= 1000:
        return decode(make_image(seed, size, "PNG"))
    small = decode(make_image(seed, (max(1, size[0] // 10), max(1, size[1] // 10)), "PNG"))
    return small.resize(size, Image.Resampling.BICUBIC)


def save(image: Image.Image, fmt: str, **params: object) -> bytes:
    """``image`` encoded as ``fmt`` with Pillow's save parameters."""
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int, colour_type: int = 2) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` but whose IDAT holds a single row."""
    row = b"\x00" + bytes(min(width, 64) * 3)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(row))
        + png_chunk(b"IEND", b"")
    )


def png_bomb(
    width: int,
    height: int,
    *,
    bit_depth: int = 8,
    colour_type: int = 3,
    frames: int = 1,
    value: int = 0,
) -> bytes:
    """A PNG of one flat colour per frame (an APNG when ``frames`` > 1), every byte of the
    first frame's samples ``value``: colour type 3 is palette (its PLTE written), 0 grey,
    2 RGB, 6 RGBA, at ``bit_depth`` bits a sample."""
    samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row_bytes = -(-width * samples * bit_depth // 8)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    chunks = [png_chunk(b"IHDR", header)]
    if colour_type == 3:
        chunks.append(png_chunk(b"PLTE", bytes(c for i in range(256) for c in (i, 255 - i, 99))))
    if frames > 1:
        chunks.append(png_chunk(b"acTL", struct.pack(">II", frames, 0)))
    sequence = 0
    for frame in range(frames):
        data = _deflate_rows(b"\0" + bytes([(value + frame * 40) % 256]) * row_bytes, height)
        if frames > 1:
            control = struct.pack(">IIIIIHHBB", sequence, width, height, 0, 0, 1, 10, 0, 0)
            chunks.append(png_chunk(b"fcTL", control))
            sequence += 1
        if frame == 0:
            chunks.append(png_chunk(b"IDAT", data))
        else:
            chunks.append(png_chunk(b"fdAT", struct.pack(">I", sequence) + data))
            sequence += 1
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + png_chunk(b"IEND", b"")


def _deflate_rows(row: bytes, count: int) -> bytes:
    """zlib data of ``row`` repeated ``count`` times, compressed a thousand rows at a time."""
    packer = zlib.compressobj(9)
    parts = [packer.compress(row * min(1000, count - done)) for done in range(0, count, 1000)]
    return b"".join(parts) + packer.flush()


def _lzw_run(pixels: int, value: int) -> bytes:
    """GIF LZW data (minimum code size 8) of ``pixels`` pixels all ``value``: each code
    names a run one pixel longer than the last, the table cleared when it is full."""
    out = bytearray()
    bits = held = 0

    def put(code: int, width: int) -> None:
        nonlocal bits, held
        bits |= code << held
        held += width
        while held >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            held -= 8

    left, width = pixels, 9
    put(256, width)  # clear
    while left > 0:
        width, emitted = 9, 0
        while left > 0 and emitted < 3838:  # the 4096-entry table is then full
            emitted += 1
            run = min(emitted, left)
            put(value if run == 1 else 256 + run, width)
            left -= run
            if 257 + emitted >= 1 << width and width < 12:
                width += 1
        if left > 0:
            put(256, width)
    put(257, width)  # end of information
    if held:
        out.append(bits & 0xFF)
    return bytes(out)


def gif_bomb(width: int, height: int, frames: int) -> bytes:
    """An animated GIF of ``frames`` full-size flat frames, each disposed to the background
    (so Pillow prepares a disposal buffer as large as the first frame when it opens it)."""
    palette = bytes(c for i in range(256) for c in (i, 255 - i, (i * 7) % 256))
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0xF7, 0, 0) + palette)
    out += b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for frame in range(frames):
        out += b"!\xf9\x04\x08\x0a\x00\x00\x00"  # disposal 2 (background), 0.1 s
        out += b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x08"
        data = _lzw_run(width * height, frame + 1)
        out += b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255]
                        for i in range(0, len(data), 255)) + b"\0"  # fmt: skip
    return bytes(out + b";")


def tiff_bomb(
    width: int, height: int, *, pages: int = 1, rows_per_strip: int = 0, orientation: int = 1
) -> bytes:
    """A deflate-compressed RGB TIFF of flat pages; one strip a page unless
    ``rows_per_strip`` (libtiff then holds a whole page's raw samples to decode it)."""
    rows = rows_per_strip or height
    out = bytearray(b"II*\0" + struct.pack("<I", 0))
    link = 4  # where the offset of the next IFD goes
    for page in range(pages):
        row = bytes([page * 60 + 30]) * (3 * width)
        offsets, counts = [], []
        for top in range(0, height, rows):
            strip = _deflate_rows(row, min(rows, height - top))
            offsets.append(len(out))
            counts.append(len(strip))
            out += strip + b"\0" * (len(strip) % 2)
        bits_at = len(out)
        out += struct.pack("<3H", 8, 8, 8)
        strips = len(offsets)
        where = offsets[0], counts[0]  # one strip: the values themselves fit in the entry
        if strips > 1:
            where = len(out), len(out) + 4 * strips
            out += struct.pack(f"<{strips}I", *offsets) + struct.pack(f"<{strips}I", *counts)
        entries = [
            (256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, bits_at),
            (259, 3, 1, 8), (262, 3, 1, 2), (273, 4, strips, where[0]),
            (274, 3, 1, orientation), (277, 3, 1, 3), (278, 4, 1, rows),
            (279, 4, strips, where[1]), (284, 3, 1, 1),
        ]  # fmt: skip
        struct.pack_into("<I", out, link, len(out))
        out += struct.pack("<H", len(entries))
        for tag, kind, count, value in entries:
            out += struct.pack("<HHII", tag, kind, count, value)
        link = len(out)
        out += struct.pack("<I", 0)
    return bytes(out)


def webp_frames(size: tuple[int, int], frames: int) -> bytes:
    """An animated, lossless WebP of flat frames (libwebp decodes each into RGBA canvases)."""
    images = [Image.new("RGB", size, (n * 70, 90, 200)) for n in range(frames)]
    return save(images[0], "WEBP", save_all=True, append_images=images[1:], lossless=True)


def ico_bomb(width: int, height: int) -> bytes:
    """An icon whose directory says 256x256 but whose one image is an RGBA PNG of
    ``width`` x ``height`` (Pillow decodes it as soon as it opens the file)."""
    png = png_bomb(width, height, colour_type=6)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 22)
    return struct.pack("<HHH", 0, 1, 1) + entry + png


def cmyk_jpeg(size: tuple[int, int], *, progressive: bool) -> bytes:
    """A flat CMYK JPEG; progressive, libjpeg keeps every coefficient of it while decoding."""
    return save(Image.new("CMYK", size, (30, 60, 90, 10)), "JPEG", progressive=progressive)


def _gif_bomb() -> bytes:
    """A one-pixel GIF whose logical screen claims 65535 x 65535 px."""
    gif = bytearray(
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
        b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )
    gif[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(gif)


def _truncated_jpeg() -> bytes:
    data = make_image(11, (640, 480), "JPEG")
    return data[: len(data) * 6 // 10]


def _truncated_png() -> bytes:
    data = make_image(12, (320, 240), "PNG")
    return data[: len(data) // 2]


def _bad_crc_png() -> bytes:
    data = bytearray(make_image(13, (320, 240), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 40] ^= 0xFF  # a bit flip inside the compressed data: the chunk CRC no longer fits
    return bytes(data)


def _cmyk(size: tuple[int, int]) -> bytes:
    return save(picture(14, size).convert("CMYK"), "JPEG", quality=90)


def _gray16_array(size: tuple[int, int]) -> np.ndarray:
    """A 16-bit grey ramp using the full 0..65535 range (mean about 32768)."""
    width, height = size
    ramp = np.linspace(0, 65535, width, dtype=np.float64)
    return np.tile(ramp, (height, 1)).astype(np.uint16)


def _gray16(size: tuple[int, int], fmt: str) -> bytes:
    return save(Image.fromarray(_gray16_array(size)), fmt)


def _animated_gif() -> bytes:
    frames = [picture(seed, (120, 90)).quantize(64) for seed in (15, 16, 17)]
    return save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _rotated(size: tuple[int, int], orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"  # a maker tag: re-encoded images must not carry it
    return save(picture(18, size), "JPEG", quality=90, exif=exif.tobytes())


def _big_png() -> bytes:
    """5000 x 5000 px: a small picture scaled up (cheap to make, cheap to compress)."""
    return save(picture(19, (5000, 5000)), "PNG", compress_level=1)


def _alpha_png() -> bytes:
    """4200 x 120 RGBA, opaque red on the left half, fully transparent on the right."""
    image = Image.new("RGBA", (4200, 120), (0, 0, 0, 0))
    image.paste((200, 0, 0, 255), (0, 0, 2100, 120))
    return save(image, "PNG")


def _heavy_jpeg() -> bytes:
    """Sensor-like noise at quality 95: about 3.6 MiB at a modest 2000 x 1700 px."""
    rng = np.random.default_rng(20)
    pixels = rng.integers(0, 256, (1700, 2000, 3), dtype=np.uint8)
    data = save(Image.fromarray(pixels, "RGB"), "JPEG", quality=95)
    low, high = HEAVY_JPEG_RANGE
    assert low <= len(data) <= high, f"heavy JPEG is {len(data)} bytes"
    return data


def _huge_jpeg() -> bytes:
    return save(Image.new("RGB", HUGE_JPEG_SIZE, (120, 160, 200)), "JPEG", quality=90)


def _eps() -> bytes:
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n"
        b"newpath 0 0 moveto 100 100 lineto stroke showpage\n%%EOF\n"
    )


BUILDERS: dict[str, Callable[[], bytes]] = {
    "photo.jpg": lambda: make_image(1, (640, 480), "JPEG"),
    "photo.png": lambda: make_image(2, (320, 240), "PNG"),
    "photo.bmp": lambda: make_image(3, (200, 150), "BMP"),
    "photo.gif": lambda: make_image(4, (200, 150), "GIF"),
    "photo.webp": lambda: make_image(5, (300, 200), "WEBP"),
    "photo.tiff": lambda: make_image(6, (300, 200), "TIFF"),
    "jpeg-named.png": lambda: make_image(7, (160, 120), "JPEG"),
    "truncated.jpg": _truncated_jpeg,
    "truncated.png": _truncated_png,
    "bad-crc.png": _bad_crc_png,
    "empty.jpg": lambda: b"",
    "text.jpg": lambda: b"this is a shopping list, not a picture\n" * 20,
    "drawing.eps": _eps,
    "tiny.png": lambda: make_image(8, (10, 10), "PNG"),
    "strip.png": lambda: png_header_only(20000, 20),
    "big.png": _big_png,
    "alpha-wide.png": _alpha_png,
    "cmyk.jpg": lambda: _cmyk((300, 200)),
    "cmyk-wide.jpg": lambda: _cmyk((4500, 300)),
    "gray16.png": lambda: _gray16((300, 200), "PNG"),
    "gray16.tiff": lambda: _gray16((300, 200), "TIFF"),
    "animated.gif": _animated_gif,
    "rotated.jpg": lambda: _rotated((320, 240)),
    "rotated-wide.jpg": lambda: _rotated((4400, 300)),
    "bomb.png": lambda: png_header_only(20000, 10000),
    "bomb.gif": _gif_bomb,
    "huge.png": lambda: png_header_only(*HUGE_JPEG_SIZE),
    "heavy.jpg": _heavy_jpeg,
    "huge.jpg": _huge_jpeg,
}

#: hostile files, small on disk and huge decoded; each either prepares or is refused
BOMBS: dict[str, Callable[[], bytes]] = {
    "palette-bomb.png": lambda: png_bomb(16000, 11000),  # 171 KB, 168 MiB as Pillow holds it
    "bilevel-bomb.png": lambda: png_bomb(16000, 11000, bit_depth=1, colour_type=0),
    "gray16-bomb.png": lambda: png_bomb(10000, 10000, bit_depth=16, colour_type=0),
    "rgb16-bomb.png": lambda: png_bomb(8000, 8000, bit_depth=16, colour_type=2),
    "frames-bomb.gif": lambda: gif_bomb(16000, 11000, 3),
    "frames-bomb.png": lambda: png_bomb(7000, 5000, colour_type=6, frames=3),
    "pages-bomb.tiff": lambda: tiff_bomb(8000, 6000, pages=3),
    "frames-bomb.webp": lambda: webp_frames((5000, 4000), 2),
    "embedded-bomb.ico": lambda: ico_bomb(8000, 8000),
    "rotated-bomb.tiff": lambda: tiff_bomb(6000, 4000, rows_per_strip=16, orientation=6),
    "cmyk-bomb.jpg": lambda: cmyk_jpeg((5000, 4000), progressive=True),
}
BUILDERS.update(BOMBS)


class Corpus:
    """The awkward files, written into ``root`` on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        """The path of corpus file ``name``, made now if it does not exist yet."""
        target = self.root / name
        if not target.exists():
            target.write_bytes(BUILDERS[name]())
        return target

    def gray16_mean_8bit(self) -> float:
        """The mean of the 16-bit grey ramp scaled to 8 bits (what a conversion should keep)."""
        return float((_gray16_array((300, 200)) >> 8).mean())


__all__ = [
    "BOMBS",
    "BUILDERS",
    "Corpus",
    "cmyk_jpeg",
    "encode",
    "gif_bomb",
    "ico_bomb",
    "picture",
    "png_bomb",
    "png_header_only",
    "save",
    "tiff_bomb",
    "webp_frames",
]
