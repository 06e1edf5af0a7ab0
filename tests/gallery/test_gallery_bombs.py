"""The local gallery decodes hostile images within the process's decode budget: five adds
of small files that decode to 4096x4096 px at once stay within it, and an image keeps the
cont_sign it had when its pixels were converted whole."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scan.decodes import run_decodes

from devkit.corpus import cmyk_jpeg, gif_bomb, png_bomb, save
from devkit.imagegen import decode, make_image
from syncd.gallery.images import decode_image_bytes
from syncd.imaging import DECODE_BUDGET_BYTES

MIB = 1024 * 1024
#: what the process may hold beyond the budget: the request bodies, base64 and all
SLACK = 48 * MIB
SIDE = 4096  # the largest side the API takes


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc VmHWM")
def test_five_adds_of_images_decoding_to_the_largest_size_stay_within_the_budget(
    tmp_path: Path,
) -> None:
    # distinct pictures, so that none is refused as already in the gallery
    files = {
        "palette.png": png_bomb(SIDE, SIDE),
        "bilevel.png": png_bomb(SIDE, SIDE, bit_depth=1, colour_type=0, value=0x55),
        "gray16.png": png_bomb(SIDE, SIDE, bit_depth=16, colour_type=0, value=0x80),
        "frames.gif": gif_bomb(SIDE, SIDE, 3),
        "frames.png": png_bomb(SIDE, SIDE, colour_type=6, frames=3, value=0xC0),
        "cmyk.jpg": cmyk_jpeg((SIDE, SIDE), progressive=True),
    }
    jobs = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        jobs.append(("gallery-http", tmp_path / name))
    report = run_decodes(jobs[:5], together=True)
    assert [outcome.ok for outcome in report.outcomes] == [True] * 5, report.outcomes
    assert report.extra <= DECODE_BUDGET_BYTES + SLACK, f"peak +{report.extra // MIB} MiB"
    # the sixth alone: libjpeg keeps all coefficients of a progressive CMYK JPEG
    report = run_decodes(jobs[5:])
    assert report.outcomes[0].ok, report.outcomes
    assert report.extra <= DECODE_BUDGET_BYTES + SLACK, f"peak +{report.extra // MIB} MiB"


def _whole_sign(data: bytes) -> str:
    """cont_sign as the gallery made it converting the whole picture in one piece."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        mode = "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB"
        pixels = image.convert(mode)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{pixels.mode}:{pixels.width}x{pixels.height}:".encode())
    digest.update(pixels.tobytes())
    value = digest.digest()
    return f"{int.from_bytes(value[:4], 'big')},{int.from_bytes(value[4:], 'big')}"


def _pictures() -> dict[str, bytes]:
    """One picture, tall enough to be signed in several bands, in every mode a file has."""
    picture = decode(make_image(21, (900, 1400), "PNG")).convert("RGB")
    alpha = np.asarray(picture.convert("RGBA")).copy()
    alpha[:700, :, 3] = 60
    grey16 = np.asarray(picture.convert("L"), np.uint16) * 257
    return {
        "rgb.jpg": save(picture, "JPEG", quality=90),
        "cmyk.jpg": save(picture.convert("CMYK"), "JPEG", quality=90),
        "palette.png": save(picture.quantize(64), "PNG"),
        "palette-transparent.png": save(picture.quantize(64), "PNG", transparency=5),
        "rgba.png": save(Image.fromarray(alpha, "RGBA"), "PNG"),
        "grey.png": save(picture.convert("L"), "PNG"),
        "grey-alpha.png": save(picture.convert("LA"), "PNG"),
        "bilevel.png": save(picture.convert("1"), "PNG"),
        "grey16.png": save(Image.fromarray(grey16), "PNG"),
        "palette.gif": save(picture.quantize(32), "GIF"),
        "rgb.bmp": save(picture, "BMP"),
    }


@pytest.mark.parametrize("name", sorted(_pictures()))
def test_an_image_keeps_the_cont_sign_of_its_whole_converted_pixels(name: str) -> None:
    data = _pictures()[name]
    assert decode_image_bytes(data).cont_sign == _whole_sign(data)
