"""Phone-size photographs made from real ones, for the tests and benchmarks of preparing
and indexing camera pictures.

The photographs are the nature wallpapers of Debian's ``mate-backgrounds`` package (GPL-2+,
2560x1600 px at most): real pictures, with a camera's textures, but smaller and far more
compressed than a phone's. ``phone_pixels`` makes one phone-size: cropped to 4:3, scaled up
to 12 megapixels (4032x3024), given a sensor's noise (grain in brightness, a little in
colour) so that it compresses like a camera picture; ``phone_jpeg`` and ``phone_heic``
save it as a phone does: a JPEG of about 3.5-4 MB at quality 94 with camera EXIF (and an
orientation tag when asked), or a HEIC. ``.ci/run`` installs the package; without it
``photo_sources`` is empty and the tests skip, saying why.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image

#: where Debian's mate-backgrounds puts its photographs
PHOTO_DIR: Final = Path("/usr/share/backgrounds/mate/nature")
#: why tests skip without them
NO_PHOTOS: Final = (
    "real photographs not installed: Debian's mate-backgrounds package "
    "(apt-get install mate-backgrounds; .ci/run does)"
)
PHONE_SIZE: Final = (4032, 3024)
_ORIENTATION: Final = 0x0112
_MAKE: Final = 0x010F
_MODEL: Final = 0x0110


def photo_sources() -> list[Path]:
    """The real photographs available, sorted by name (empty when not installed)."""
    if not PHOTO_DIR.is_dir():
        return []
    return sorted(PHOTO_DIR.glob("*.jpg"))


def phone_pixels(
    source: Path, size: tuple[int, int] = PHONE_SIZE, seed: int = 0, variant: int = 0
) -> Image.Image:
    """The photograph at ``source`` as a phone's sensor would have it: 4:3, ``size`` px,
    with grain (``seed`` picks the noise, so copies of one photograph differ only by it).
    ``variant`` over 0 frames it otherwise, as another shot of the same scene: a closer
    view (up to 75 % of the sides) placed elsewhere, mirrored every other time; each is
    a picture of its own to a gallery, not a copy."""
    with Image.open(source) as img:
        img = img.convert("RGB")
        width, height = img.size
        aspect = size[0] / size[1]
        crop_w, crop_h = (
            (height * aspect, height) if width / height > aspect else (width, width / aspect)
        )
        zoom = 1.0 - 0.25 * (variant % 5) / 4
        crop_w, crop_h = crop_w * zoom, crop_h * zoom
        places = ((0.5, 0.5), (0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0), (0.5, 0.0))
        fx, fy = places[(variant // 5) % len(places)] if variant else (0.5, 0.5)
        left, top = (width - crop_w) * fx, (height - crop_h) * fy
        box = (left, top, left + crop_w, top + crop_h)
        big = img.resize(size, Image.Resampling.BICUBIC, box=box)
        if variant % 2:
            big = big.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    rng = np.random.default_rng(seed)
    pixels = np.asarray(big, dtype=np.int16)
    # grain: mostly in brightness (all channels alike), a little in colour
    luma = rng.normal(0.0, 4.0, size=(size[1], size[0], 1)).astype(np.int16)
    chroma = rng.normal(0.0, 1.5, size=(size[1], size[0], 3)).astype(np.int16)
    noisy = np.clip(pixels + luma + chroma, 0, 255).astype(np.uint8)
    return Image.fromarray(noisy, "RGB")


def camera_exif(orientation: int = 1) -> Image.Exif:
    """EXIF as a phone writes it (make, model), with ``orientation`` when not 1."""
    exif = Image.Exif()
    exif[_MAKE] = "syncd-test"
    exif[_MODEL] = "Phone 12MP"
    if orientation != 1:
        exif[_ORIENTATION] = orientation
    return exif


def phone_jpeg(
    source: Path,
    seed: int = 0,
    orientation: int = 1,
    size: tuple[int, int] = PHONE_SIZE,
    variant: int = 0,
    quality: int = 94,
) -> bytes:
    """A phone's JPEG of the photograph: 12 MP, 4:2:0, camera EXIF; at quality 94 about
    3.5-4 MB, over the gallery's 3 MiB limit (at 90, 2.3-2.8 MB, within it)."""
    out = io.BytesIO()
    phone_pixels(source, size, seed, variant).save(
        out, "JPEG", quality=quality, subsampling=2, exif=camera_exif(orientation)
    )
    return out.getvalue()


def phone_heic(
    source: Path,
    seed: int = 0,
    orientation: int = 1,
    size: tuple[int, int] = PHONE_SIZE,
    variant: int = 0,
) -> bytes:
    """A phone's HEIC of the photograph (pillow-heif's x265 encoder at quality 50 and its
    fastest preset: 1.3-1.6 MB), the orientation in its EXIF. Encoding takes seconds."""
    from pillow_heif import from_pillow

    heif = from_pillow(phone_pixels(source, size, seed, variant))
    out = io.BytesIO()
    heif.save(
        out, quality=50, enc_params={"preset": "ultrafast"}, exif=camera_exif(orientation).tobytes()
    )
    return out.getvalue()
