"""Bad and awkward image files for the preparation tests, each made on first use.

``Corpus(dir).path(name)`` writes the file called ``name`` (a key of ``BUILDERS``) into
``dir`` once and returns its path. Large images are made cheaply (solid fills, upscaled
small pictures, or a valid header over almost no data) so the suite stays fast.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from imagegen import decode, encode, make_image
from PIL import Image

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


__all__ = ["BUILDERS", "Corpus", "encode", "picture", "png_header_only", "save"]
