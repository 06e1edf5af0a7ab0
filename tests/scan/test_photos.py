"""Preparing phone photographs: real pictures at a phone's 12 megapixels (devkit.photos).

A phone's JPEG over the byte limit is sent at half its sides (libjpeg's 1/2 scale, the
size it is decoded at), its orientation tag kept, encoded once; a phone's HEIC becomes an
upright JPEG at half its sides, encoded once. The pixels sent are the photograph's.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from devkit.photos import NO_PHOTOS, PHONE_SIZE, phone_heic, phone_jpeg, phone_pixels, photo_sources
from syncd.scan.prepare import MAX_IMAGE_BYTES, inspect_image, prepare_image

pytestmark = pytest.mark.skipif(not photo_sources(), reason=NO_PHOTOS)

HALF: tuple[int, int] = (PHONE_SIZE[0] // 2, PHONE_SIZE[1] // 2)
ROTATE_CLOCKWISE = 6


@pytest.fixture
def jpeg_encodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The byte counts of every JPEG Pillow encodes into memory meanwhile, in order."""
    sizes: list[int] = []
    original = Image.Image.save

    def counting(
        self: Image.Image, fp: object, format: str | None = None, **params: object
    ) -> None:
        original(self, fp, format, **params)  # type: ignore[arg-type]
        if format == "JPEG" and isinstance(fp, io.BytesIO):
            sizes.append(fp.tell())

    monkeypatch.setattr(Image.Image, "save", counting)
    yield sizes


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two same-size pictures, per RGB sample (0..255)."""
    assert a.size == b.size
    return float(np.abs(np.asarray(a, float) - np.asarray(b.convert(a.mode), float)).mean())


@pytest.mark.parametrize("index", [0, 9])
def test_a_phone_jpeg_over_the_limit_is_sent_at_half_size_encoded_once(
    tmp_path: Path, index: int, jpeg_encodes: list[int]
) -> None:
    source = photo_sources()[index]
    path = tmp_path / "IMG_0001.JPG"
    path.write_bytes(phone_jpeg(source, seed=index, orientation=ROTATE_CLOCKWISE))
    assert path.stat().st_size > MAX_IMAGE_BYTES
    assert inspect_image(path).action == "downscale"
    jpeg_encodes.clear()  # the test's own photograph is not counted
    prepared = prepare_image(path)
    assert (prepared.format, prepared.converted) == ("JPEG", True)
    assert len(prepared.data) <= MAX_IMAGE_BYTES
    assert jpeg_encodes == [len(prepared.data)]  # the size estimated fits the first time
    assert (prepared.width, prepared.height) == prepared.decoded_size == HALF
    with Image.open(io.BytesIO(prepared.data)) as sent:
        assert sent.size == HALF
        assert sent.getexif().get(0x0112) == ROTATE_CLOCKWISE  # turned by the gallery, as sent
        assert mean_difference(sent.convert("RGB"), phone_pixels(source, seed=index).reduce(2)) < 4


def test_a_phone_heic_becomes_an_upright_jpeg_at_half_size_encoded_once(
    tmp_path: Path, jpeg_encodes: list[int]
) -> None:
    source = photo_sources()[1]
    path = tmp_path / "IMG_0002.HEIC"
    path.write_bytes(phone_heic(source, seed=7, orientation=ROTATE_CLOCKWISE))
    assert inspect_image(path).action == "convert"
    jpeg_encodes.clear()
    prepared = prepare_image(path)
    assert (prepared.format, prepared.converted) == ("JPEG", True)
    assert jpeg_encodes == [len(prepared.data)]
    upright = phone_pixels(source, seed=7).transpose(Image.Transpose.ROTATE_270)
    with Image.open(io.BytesIO(prepared.data)) as sent:
        assert sent.size == (HALF[1], HALF[0])  # as a person sees it
        assert sent.getexif().get(0x0112) is None
        assert mean_difference(sent.convert("RGB"), upright.reduce(2)) < 5


def test_a_phone_jpeg_within_the_limit_is_sent_byte_for_byte(tmp_path: Path) -> None:
    source = photo_sources()[2]
    out = io.BytesIO()
    phone_pixels(source, seed=2).save(out, "JPEG", quality=85)
    path = tmp_path / "IMG_0003.JPG"
    path.write_bytes(out.getvalue())
    assert path.stat().st_size <= MAX_IMAGE_BYTES
    prepared = prepare_image(path)
    assert (prepared.converted, prepared.data) == (False, out.getvalue())
    assert (prepared.width, prepared.height) == PHONE_SIZE


def test_a_phone_jpeg_with_skip_is_refused_not_shrunk(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0004.JPG"
    path.write_bytes(phone_jpeg(photo_sources()[3], seed=4))
    with pytest.raises(Exception, match='oversize = "skip"'):
        prepare_image(path, oversize="skip")
