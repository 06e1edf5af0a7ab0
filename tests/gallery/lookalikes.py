"""Look-alike synthetic pictures: what a hostile or merely dull share holds.

Gradients cut in bands, stripes, checkerboards, flat colours of near shades, pages of
text and line art: pictures with little texture, whose coarse thumbnails and perceptual
hashes agree although the pictures differ. ``lookalikes()`` draws them all (name ->
RGB picture, at sizes of their own); ``copies(picture)`` gives what same-image search
must still take for that very picture: re-encoded and rescaled copies.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

_Pixels = npt.NDArray[np.uint8]


def _picture(pixels: npt.NDArray[np.floating] | _Pixels) -> Image.Image:
    grey = np.asarray(pixels, dtype=np.float64).clip(0, 255).round().astype(np.uint8)
    if grey.ndim == 2:
        grey = np.repeat(grey[..., None], 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(grey), "RGB")


def banded_gradient(bands: int, size: tuple[int, int], vertical: bool = False) -> Image.Image:
    """A black-to-white gradient cut in ``bands`` flat bands of equal width."""
    width, height = size
    length = height if vertical else width
    band = np.minimum(np.arange(length) * bands // length, bands - 1)
    levels = band * 255.0 / (bands - 1)
    line = levels[:, None] if vertical else levels[None, :]
    return _picture(np.broadcast_to(line, (height, width)))


def smooth_gradient(
    size: tuple[int, int], start: tuple[int, int, int], end: tuple[int, int, int], angle: float
) -> Image.Image:
    """A smooth two-colour linear gradient at ``angle`` degrees."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    rad = np.deg2rad(angle)
    t = xs / max(width - 1, 1) * np.cos(rad) + ys / max(height - 1, 1) * np.sin(rad)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-9)
    pixels = np.array(start)[None, None, :] * (1 - t[..., None]) + np.array(end) * t[..., None]
    return _picture(pixels)


def radial_gradient(rings: int, size: tuple[int, int]) -> Image.Image:
    """Concentric rings, dark in the middle to light at the corners, in ``rings`` bands."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    radius = np.hypot((xs + 0.5) / width - 0.5, (ys + 0.5) / height - 0.5) / np.hypot(0.5, 0.5)
    band = np.minimum(np.floor(radius * rings), rings - 1)
    return _picture(40 + band * 200.0 / (rings - 1))


def stripes(count: int, size: tuple[int, int], vertical: bool = True) -> Image.Image:
    """``count`` alternating dark and light stripes of equal width."""
    width, height = size
    length = width if vertical else height
    stripe = (np.arange(length) * count // length) % 2
    levels = 50 + 160.0 * stripe
    line = levels[None, :] if vertical else levels[:, None]
    return _picture(np.broadcast_to(line, (height, width)))


def checkerboard(cells: int, size: tuple[int, int]) -> Image.Image:
    """A checkerboard of ``cells`` x ``cells`` black and white squares."""
    width, height = size
    column = np.arange(width) * cells // width
    row = np.arange(height) * cells // height
    return _picture(((row[:, None] + column[None, :]) % 2) * 255.0)


def flat(colour: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    """One colour all over."""
    return Image.new("RGB", size, colour)


def text_page(lines: list[str], size: tuple[int, int] = (320, 240)) -> Image.Image:
    """Black lines of text on white in ImageDraw's default font, one every 20 px."""
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    for n, line in enumerate(lines):
        draw.text((16, 16 + 20 * n), line, fill="black")
    return page


def line_art(kind: str, size: tuple[int, int] = (320, 320)) -> Image.Image:
    """A few black strokes on white: an outline of a ``kind`` of shape."""
    width, height = size
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    box = (width * 0.2, height * 0.2, width * 0.8, height * 0.8)
    stroke = max(2, width // 80)
    if kind == "circle":
        draw.ellipse(box, outline="black", width=stroke)
    elif kind == "square":
        draw.rectangle(box, outline="black", width=stroke)
    elif kind == "triangle":
        corners = [
            (width * 0.5, height * 0.2),
            (width * 0.8, height * 0.8),
            (width * 0.2, height * 0.8),
        ]
        draw.polygon(corners, outline="black", width=stroke)
    elif kind == "cross":
        draw.line((box[0], box[1], box[2], box[3]), fill="black", width=stroke)
        draw.line((box[0], box[3], box[2], box[1]), fill="black", width=stroke)
    elif kind == "house":
        draw.rectangle(
            (width * 0.25, height * 0.5, width * 0.75, height * 0.85), outline="black", width=stroke
        )
        draw.line(
            (width * 0.2, height * 0.5, width * 0.5, height * 0.2, width * 0.8, height * 0.5),
            fill="black",
            width=stroke,
        )
    else:
        raise ValueError(kind)
    return page


def issue_gradients() -> dict[str, Image.Image]:
    """The issue's stripe gradients: 10, 15, 20 and 25 bands, each at a size of its own
    (of one aspect, so that only their content tells them apart)."""
    sizes = {10: (400, 300), 15: (320, 240), 20: (480, 360), 25: (600, 450)}
    return {
        f"gradient-{bands}-bands": banded_gradient(bands, size) for bands, size in sizes.items()
    }


def lookalikes() -> dict[str, Image.Image]:
    """Every look-alike picture by name (more than 30, none a copy of another)."""
    pictures = dict(issue_gradients())
    pictures.update(
        {
            "gradient-8-bands-vertical": banded_gradient(8, (300, 400), vertical=True),
            "gradient-12-bands-vertical": banded_gradient(12, (320, 320), vertical=True),
            "gradient-smooth-horizontal": smooth_gradient(
                (400, 300), (0, 0, 0), (255, 255, 255), 0
            ),
            "gradient-smooth-vertical": smooth_gradient((400, 300), (0, 0, 0), (255, 255, 255), 90),
            "gradient-smooth-diagonal": smooth_gradient((400, 300), (0, 0, 0), (255, 255, 255), 45),
            "gradient-smooth-red-blue": smooth_gradient(
                (400, 300), (220, 30, 30), (30, 30, 220), 0
            ),
            "gradient-radial-6-rings": radial_gradient(6, (320, 320)),
            "gradient-radial-9-rings": radial_gradient(9, (320, 320)),
            "gradient-radial-12-rings": radial_gradient(12, (360, 270)),
            "stripes-6": stripes(6, (300, 300)),
            "stripes-10": stripes(10, (400, 300)),
            "stripes-14": stripes(14, (320, 320)),
            "stripes-20": stripes(20, (480, 360)),
            "stripes-9-horizontal": stripes(9, (300, 400), vertical=False),
            "stripes-16-horizontal": stripes(16, (400, 400), vertical=False),
            "checkerboard-4": checkerboard(4, (320, 320)),
            "checkerboard-6": checkerboard(6, (300, 300)),
            "checkerboard-9": checkerboard(9, (360, 360)),
            "checkerboard-14": checkerboard(14, (420, 420)),
            "checkerboard-20": checkerboard(20, (400, 400)),
            "flat-grey-120": flat((120, 120, 120), (320, 240)),
            "flat-grey-132": flat((132, 132, 132), (320, 240)),
            "flat-grey-144": flat((144, 144, 144), (320, 240)),
            "flat-red": flat((200, 60, 60), (320, 240)),
            "flat-red-warmer": flat((200, 72, 56), (320, 240)),
            "flat-white": flat((255, 255, 255), (320, 240)),
            "flat-near-white": flat((243, 243, 243), (320, 240)),
            "text-invoice": text_page(["Invoice 2024-118", "Total due: 412.50", "Thank you"]),
            # the invoice's layout and half its words
            "text-notes": text_page(["Notes 2024-119", "Total seen: 377.25", "Thank him"]),
            "text-letter": text_page(["Dear Ms Varga,", "the parcel left today.", "Regards, Tom"]),
            "text-list": text_page(["1. milk", "2. bread", "3. apples", "4. coffee"]),
            "line-art-circle": line_art("circle"),
            "line-art-square": line_art("square"),
            "line-art-triangle": line_art("triangle"),
            "line-art-cross": line_art("cross"),
            "line-art-house": line_art("house"),
        }
    )
    return pictures


def encoded(picture: Image.Image, fmt: str = "PNG", quality: int = 90) -> bytes:
    """``picture`` encoded as ``fmt`` (JPEG at ``quality``)."""
    out = io.BytesIO()
    if fmt == "JPEG":
        picture.save(out, "JPEG", quality=quality)
    else:
        picture.save(out, fmt)
    return out.getvalue()


def resized(picture: Image.Image, factor: float, aspect: float = 1.0) -> Image.Image:
    """``picture`` scaled by ``factor`` (its height also by ``aspect``: 1 keeps the shape)."""
    width = max(1, round(picture.width * factor))
    height = max(1, round(picture.height * factor * aspect))
    return picture.resize((width, height), Image.Resampling.LANCZOS)


def copies(picture: Image.Image) -> dict[str, bytes]:
    """Copies of ``picture`` that are the same image: re-encoded and rescaled."""
    # one pixel more or less than the exact scale: what rounding does to an aspect
    one_pixel = (round(picture.height * 1.3) + 1) / (picture.height * 1.3)
    return {
        "jpeg-q95": encoded(picture, "JPEG", 95),
        "jpeg-q60": encoded(picture, "JPEG", 60),
        "png": encoded(picture, "PNG"),
        "half-jpeg-q80": encoded(resized(picture, 0.5), "JPEG", 80),
        "double-png": encoded(resized(picture, 2.0), "PNG"),
        "three-quarters-jpeg-q70": encoded(resized(picture, 0.75), "JPEG", 70),
        "larger-one-pixel-taller-jpeg-q90": encoded(resized(picture, 1.3, one_pixel), "JPEG", 90),
    }
