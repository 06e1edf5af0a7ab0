"""Varied, textured test pictures, fast to draw: what same-image search meets in photos.

``textured_image(seed)`` paints a smooth two-colour field, a woven sinusoidal texture,
and dozens of anti-aliased shapes and strokes of random colours, then a little sensor
noise: many corners and edges at every scale, like a photo, drawn with OpenCV in a
millisecond or two. Different seeds give unrelated pictures.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from devkit.imagegen import decode, encode


def textured_pixels(seed: int, size: tuple[int, int] = (320, 240)) -> npt.NDArray[np.uint8]:
    """The RGB pixels (height, width, 3) of the textured picture number ``seed``."""
    rng = np.random.default_rng(seed)
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    start = rng.uniform(0, 255, 3).astype(np.float32)
    end = rng.uniform(0, 255, 3).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = (xs * np.cos(angle) + ys * np.sin(angle)) / max(width, height)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    pixels = start * (1 - t[..., None]) + end * t[..., None]
    for _ in range(3):  # woven texture: a few random plane waves
        fx, fy = rng.uniform(-0.15, 0.15, 2)
        wave = np.sin(xs * np.float32(fx) + ys * np.float32(fy) + np.float32(rng.uniform(0, 6.3)))
        pixels += np.float32(rng.uniform(8, 25)) * wave[..., None]
    canvas = np.ascontiguousarray(pixels.clip(0, 255).astype(np.uint8))
    for _ in range(int(rng.integers(25, 45))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 4))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        scale = int(rng.integers(4, max(5, min(width, height) // 4)))
        if kind == 0:
            cv2.circle(canvas, (x, y), scale, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(canvas, (x, y), (x + scale, y + int(rng.integers(4, 60))), colour, -1)
        elif kind == 2:
            points = rng.integers(-scale, scale, (int(rng.integers(3, 7)), 2)) + (x, y)
            cv2.fillPoly(canvas, [points.astype(np.int32)], colour, cv2.LINE_AA)
        else:
            end_point = (x + int(rng.integers(-80, 80)), y + int(rng.integers(-80, 80)))
            cv2.line(canvas, (x, y), end_point, colour, int(rng.integers(1, 6)), cv2.LINE_AA)
    noise = rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(3.0)
    return (canvas.astype(np.float32) + noise).clip(0, 255).astype(np.uint8)


def textured_image(seed: int, size: tuple[int, int] = (320, 240), quality: int = 90) -> bytes:
    """The textured picture number ``seed`` as a JPEG of ``size`` (width, height) pixels."""
    return encode(Image.fromarray(textured_pixels(seed, size), "RGB"), "JPEG", quality)


def crop_copy(seed: int, keep: float = 0.75, size: tuple[int, int] = (320, 240)) -> bytes:
    """A partial copy of picture ``seed``: ``keep`` of each side (off centre), rescaled to
    80 %, re-encoded as a JPEG at quality 75."""
    picture = decode(textured_image(seed, size))
    width, height = size
    cw, ch = round(width * keep), round(height * keep)
    rng = np.random.default_rng(seed + 1)
    left, top = int(rng.integers(0, width - cw + 1)), int(rng.integers(0, height - ch + 1))
    part = picture.crop((left, top, left + cw, top + ch))
    part = part.resize((round(cw * 0.8), round(ch * 0.8)), Image.Resampling.LANCZOS)
    return encode(part, "JPEG", 75)
