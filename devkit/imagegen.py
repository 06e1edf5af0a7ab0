"""Deterministic, distinct, realistic-ish test images, shared by the tests and the benchmarks.

``make_image(seed)`` draws a gradient background with a handful of anti-aliased shapes
and a little sensor-like noise, so JPEG compression, rescaling and cropping behave as
they do on photos. The same seed at another size is the same picture rescaled (shapes
are placed in relative coordinates), so the gallery takes the two for the same image.
Different seeds give pictures that the gallery never takes for the same image.

Import with ``from devkit.imagegen import make_image`` (see ``devkit/__init__.py``) or,
in a test, use the ``make_image`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

import functools
import io
import random

import numpy as np
from PIL import Image, ImageDraw

#: supersampling factor: shapes are drawn this much larger, then downscaled (anti-aliasing)
_SUPERSAMPLE = 3


def _random_colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _gradient(rng: random.Random, width: int, height: int) -> Image.Image:
    """A linear two-colour gradient at a random angle."""
    start = np.array(_random_colour(rng), dtype=np.float32)
    end = np.array(_random_colour(rng), dtype=np.float32)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    # position along the gradient direction, normalised to 0..1 in relative coordinates
    t = (xs / max(width - 1, 1)) * np.cos(angle) + (ys / max(height - 1, 1)) * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    pixels = start[None, None, :] * (1.0 - t[..., None]) + end[None, None, :] * t[..., None]
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB")


def _draw_shapes(rng: random.Random, canvas: Image.Image) -> None:
    draw = ImageDraw.Draw(canvas)
    width, height = canvas.size

    def point() -> tuple[float, float]:
        return (rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height)

    for _ in range(rng.randint(4, 9)):
        kind = rng.choice(("ellipse", "rectangle", "polygon", "line"))
        colour = _random_colour(rng)
        if kind in ("ellipse", "rectangle"):
            (x0, y0), (x1, y1) = point(), point()
            box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            if kind == "ellipse":
                draw.ellipse(box, fill=colour)
            else:
                draw.rectangle(box, fill=colour)
        elif kind == "polygon":
            draw.polygon([point() for _ in range(rng.randint(3, 6))], fill=colour)
        else:
            line_width = max(1, int(rng.uniform(0.02, 0.08) * min(width, height)))
            draw.line([point(), point()], fill=colour, width=line_width)


@functools.lru_cache(maxsize=2048)
def make_image(seed: int, size: tuple[int, int] = (64, 64), fmt: str = "JPEG") -> bytes:
    """Encoded bytes of the test picture number ``seed``.

    ``size`` is (width, height) in pixels; ``fmt`` any format Pillow writes ("JPEG",
    "PNG", "BMP", "GIF", "WEBP", "TIFF", ...). JPEG is written at quality 90.
    Deterministic: the same arguments always give the same bytes (cached, so asking
    again is free).
    """
    rng = random.Random(seed)
    width, height = size
    big = _gradient(rng, width * _SUPERSAMPLE, height * _SUPERSAMPLE)
    _draw_shapes(rng, big)
    picture = big.resize((width, height), Image.Resampling.LANCZOS)
    # faint per-pixel noise, like a camera sensor, so no two encodings are trivially flat
    noise = np.random.default_rng(seed).normal(0.0, 3.0, (height, width, 3))
    pixels = (np.asarray(picture, dtype=np.float32) + noise).clip(0, 255).astype(np.uint8)
    return encode(Image.fromarray(pixels, "RGB"), fmt)


def encode(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """``image`` encoded as ``fmt`` (JPEG at ``quality``; GIF quantised to 256 colours)."""
    out = io.BytesIO()
    fmt = fmt.upper()
    if fmt in ("JPEG", "JPG"):
        image.convert("RGB").save(out, "JPEG", quality=quality)
    elif fmt == "GIF":
        image.convert("RGB").quantize(256).save(out, "GIF")
    else:
        image.save(out, fmt)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    """The decoded RGB picture of encoded ``data``."""
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def reencode(data: bytes, fmt: str = "JPEG", quality: int = 70) -> bytes:
    """The same picture encoded again (other bytes, other compression artefacts)."""
    return encode(decode(data), fmt, quality)


def rescale(data: bytes, factor: float, fmt: str = "JPEG") -> bytes:
    """The same picture scaled by ``factor`` (e.g. 0.5 halves both sides)."""
    image = decode(data)
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return encode(image.resize(size, Image.Resampling.LANCZOS), fmt)


def crop(data: bytes, keep: float = 0.7, fmt: str = "JPEG") -> bytes:
    """The central part of the picture, ``keep`` of each side (0 < keep <= 1)."""
    image = decode(data)
    w, h = image.size
    cw, ch = max(1, round(w * keep)), max(1, round(h * keep))
    left, top = (w - cw) // 2, (h - ch) // 2
    return encode(image.crop((left, top, left + cw, top + ch)), fmt)
