"""Image preparation on a corpus of real awkward files: what is sent, converted or refused."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from devkit.corpus import HUGE_JPEG_SIZE, Corpus, picture
from syncd.api.baidu.limits import MAX_IMAGE_B64_BYTES, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE
from syncd.scan.prepare import (
    MAX_IMAGE_BYTES,
    ImageRejected,
    PreparedImage,
    inspect_image,
    prepare_image,
)


def assert_sendable(prepared: PreparedImage) -> Image.Image:
    """The prepared bytes decode as what they claim to be, within every API limit."""
    assert len(prepared.data) <= MAX_IMAGE_BYTES
    assert len(prepared.data) * 4 / 3 <= MAX_IMAGE_B64_BYTES
    image = Image.open(io.BytesIO(prepared.data))
    image.load()
    assert image.format in (("JPEG", "MPO") if prepared.format == "JPEG" else (prepared.format,))
    assert image.size == (prepared.width, prepared.height)
    assert min(image.size) >= MIN_IMAGE_SIDE and max(image.size) <= MAX_IMAGE_SIDE
    return image


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("photo.jpg", "JPEG"),
        ("photo.png", "PNG"),
        ("photo.bmp", "BMP"),
        ("photo.gif", "GIF"),
        ("cmyk.jpg", "JPEG"),
        ("gray16.png", "PNG"),
        ("animated.gif", "GIF"),
        ("rotated.jpg", "JPEG"),
        ("jpeg-named.png", "JPEG"),
    ],
)
def test_images_the_api_takes_within_limits_are_sent_byte_for_byte(
    corpus: Corpus, name: str, fmt: str
) -> None:
    path = corpus.path(name)
    info = inspect_image(path)
    assert info.action == "as_is"
    prepared = prepare_image(path)
    assert prepared.data == path.read_bytes()
    assert (prepared.format, prepared.converted, prepared.decoded_size) == (fmt, False, None)
    assert_sendable(prepared)
    assert (prepared.width, prepared.height) == (info.width, info.height)


def test_an_animated_gif_keeps_all_its_frames(corpus: Corpus) -> None:
    image = assert_sendable(prepare_image(corpus.path("animated.gif")))
    assert getattr(image, "n_frames", 1) == 3


def test_an_exif_rotated_jpeg_keeps_its_orientation_for_the_gallery(corpus: Corpus) -> None:
    image = assert_sendable(prepare_image(corpus.path("rotated.jpg")))
    assert image.getexif().get(0x0112) == 6


@pytest.mark.parametrize(
    ("name", "source_format"), [("photo.webp", "WEBP"), ("photo.tiff", "TIFF")]
)
def test_other_readable_formats_become_jpeg_of_the_same_size(
    corpus: Corpus, name: str, source_format: str
) -> None:
    path = corpus.path(name)
    info = inspect_image(path)
    assert (info.format, info.action) == (source_format, "convert")
    prepared = prepare_image(path)
    assert (prepared.format, prepared.converted) == ("JPEG", True)
    image = assert_sendable(prepared)
    assert image.size == (info.width, info.height)
    with Image.open(path) as source:
        diff = np.abs(
            np.asarray(source.convert("RGB"), float) - np.asarray(image.convert("RGB"), float)
        )
    assert diff.mean() < 6  # the same picture, give or take JPEG artefacts


#: EXIF orientation 6: the stored pixels are shown turned 90 degrees clockwise
ROTATE_CLOCKWISE = 6


def sideways(path: Path, upright: Image.Image, fmt: str) -> None:
    """Write ``upright`` as a camera held sideways does: its pixels turned a quarter
    anticlockwise, tagged ``ROTATE_CLOCKWISE`` (HEIF stores that as its own rotation)."""
    pillow_heif.register_heif_opener()  # to write HEIC; syncd registers it itself to read
    exif = Image.Exif()
    exif[0x0112] = ROTATE_CLOCKWISE
    upright.transpose(Image.Transpose.ROTATE_90).save(path, fmt, exif=exif.tobytes(), quality=90)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two same-size pictures, per RGB sample (0..255)."""
    assert a.size == b.size
    return float(
        np.abs(np.asarray(a.convert("RGB"), float) - np.asarray(b.convert("RGB"), float)).mean()
    )


@pytest.mark.parametrize(
    ("name", "fmt", "source_format"),
    [
        ("IMG_0001.HEIC", "HEIF", "HEIF"),
        ("photo.heif", "HEIF", "HEIF"),
        ("photo.avif", "AVIF", "AVIF"),
        ("photo.webp", "WEBP", "WEBP"),
        ("photo.tiff", "TIFF", "TIFF"),
    ],
)
def test_converted_photos_are_jpeg_turned_upright_by_their_orientation(
    tmp_path: Path, name: str, fmt: str, source_format: str
) -> None:
    upright = picture(31, (300, 200))
    path = tmp_path / name
    sideways(path, upright, fmt)
    info = inspect_image(path)
    assert (info.format, info.action) == (source_format, "convert")
    prepared = prepare_image(path)
    assert (prepared.format, prepared.converted) == ("JPEG", True)
    image = assert_sendable(prepared)
    assert image.size == (300, 200)  # as a person sees it, not as stored
    assert image.getexif().get(0x0112) is None  # upright: no tag left to turn it again
    assert mean_difference(image, upright) < 6


def test_a_converted_photo_over_the_limits_is_scaled_and_turned_upright(tmp_path: Path) -> None:
    # over 4096 px, and (at 16 bytes a pixel while libwebp decodes it) within the budget
    upright = picture(32, (4200, 2520))
    path = tmp_path / "big.webp"  # the path every converted format takes; WebP encodes fast
    sideways(path, upright, "WEBP")
    image = assert_sendable(prepare_image(path))
    assert image.size == (4096, 2458)
    assert mean_difference(image, upright.resize(image.size)) < 8


def test_a_large_transparent_picture_is_reduced_by_a_whole_factor_on_white(
    tmp_path: Path,
) -> None:
    # within the sides, but at 7 megapixels its JPEG is planned over the byte limit: it is
    # reduced by 2 (each pixel the mean of 2x2), converted a band at a time
    pixels = np.zeros((2400, 3000, 4), dtype=np.uint8)
    pixels[:, :, :3] = (200, 40, 40)
    pixels[:, :1500, 3] = 255  # the left half opaque red, the right half transparent
    pixels[:, 1500:, 3] = 0
    path = tmp_path / "big.webp"
    Image.fromarray(pixels, "RGBA").save(path, "WEBP", lossless=True)
    prepared = prepare_image(path)
    image = assert_sendable(prepared).convert("RGB")
    assert image.size == (1500, 1200)
    left, right = image.getpixel((300, 600)), image.getpixel((1200, 600))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert left[0] > 170 and left[1] < 70  # the opaque red stays red
    assert min(right) > 245  # the transparent half is white


@pytest.mark.parametrize(
    ("name", "fmt", "reason"),
    [
        ("cut.heic", "HEIF", r"^(truncated|corrupt) HEIF \("),
        ("cut.avif", "AVIF", r"^(truncated|corrupt) AVIF \("),
    ],
)
def test_a_cut_phone_photo_is_refused_with_one_line(
    tmp_path: Path, name: str, fmt: str, reason: str
) -> None:
    whole = tmp_path / f"whole.{fmt.lower()}"
    sideways(whole, picture(33, (300, 200)), fmt)
    path = tmp_path / name
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    for call in (inspect_image, prepare_image):
        with pytest.raises(ImageRejected) as caught:
            call(path)
        assert re.match(reason, caught.value.reason), caught.value.reason
        assert "\n" not in caught.value.reason and len(caught.value.reason) <= 200


def test_a_16_bit_tiff_is_scaled_to_8_bits_not_clipped(corpus: Corpus) -> None:
    prepared = prepare_image(corpus.path("gray16.tiff"))
    image = assert_sendable(prepared)
    mean = float(np.asarray(image.convert("L"), float).mean())
    assert abs(mean - corpus.gray16_mean_8bit()) < 3


# pytest resets warning filters for each test, dropping the one prepare sets at import
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.jpg", "empty file (0 bytes)"),
        ("text.jpg", "not an image (cannot identify image file)"),
        ("drawing.eps", "not an image (cannot identify image file)"),
        ("tiny.png", "image is 10x10 px; the gallery needs at least 15 px on the shortest side"),
        ("bomb.png", "decompression bomb: 200000000 px exceeds the limit of 180000000 px"),
        ("bomb.gif", "decompression bomb: 4294836225 px exceeds the limit of 180000000 px"),
        ("strip.png", "image is 20000x20 px; scaled to 4096 px on the longest side it would"),
        # its RGB frame alone is 384 MiB (tests/scan/test_bombs.py checks the figures)
        ("huge.png", "image is 12000x8400 px; decoding it needs "),
    ],
)
def test_files_condemned_by_their_header_are_refused_with_one_line(
    corpus: Corpus, name: str, reason: str
) -> None:
    path = corpus.path(name)
    for call in (inspect_image, prepare_image):
        with pytest.raises(ImageRejected) as caught:
            call(path)
        assert caught.value.reason.startswith(reason)
        assert "\n" not in caught.value.reason and str(caught.value) == caught.value.reason


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("truncated.jpg", "truncated JPEG"),
        ("truncated.png", "truncated PNG"),
        ("bad-crc.png", "corrupt PNG"),
    ],
)
def test_corrupt_data_behind_a_good_header_is_refused_when_preparing(
    corpus: Corpus, name: str, reason: str
) -> None:
    path = corpus.path(name)
    assert inspect_image(path).action == "as_is"  # the header alone looks fine
    with pytest.raises(ImageRejected) as caught:
        prepare_image(path)
    assert caught.value.reason.startswith(reason)
    assert "\n" not in caught.value.reason


def test_an_oversize_png_is_downscaled_to_fit_or_skipped(corpus: Corpus) -> None:
    path = corpus.path("big.png")
    assert inspect_image(path).action == "downscale"
    prepared = prepare_image(path)
    image = assert_sendable(prepared)
    assert image.size == (4096, 4096) and prepared.converted and prepared.format == "JPEG"
    assert prepared.decoded_size == (5000, 5000)
    for call in (inspect_image, prepare_image):
        with pytest.raises(ImageRejected, match='^oversize 5000x5000 and oversize = "skip"$'):
            call(path, oversize="skip")


def test_a_jpeg_over_the_byte_limit_is_reencoded_to_fit(corpus: Corpus) -> None:
    path = corpus.path("heavy.jpg")
    assert path.stat().st_size > MAX_IMAGE_BYTES
    with Image.open(path) as source:
        source_size = source.size
    assert max(source_size) <= MAX_IMAGE_SIDE  # over the byte limit only
    assert inspect_image(path).action == "downscale"
    prepared = prepare_image(path)
    image = assert_sendable(prepared)
    assert image.width <= source_size[0] and image.height <= source_size[1]
    assert image.width * source_size[1] == pytest.approx(image.height * source_size[0], rel=0.01)
    with pytest.raises(
        ImageRejected, match=r'^oversize \d+ bytes \(limit 3145728\) and oversize = "skip"$'
    ):
        prepare_image(path, oversize="skip")


def test_transparency_is_flattened_onto_white(corpus: Corpus) -> None:
    prepared = prepare_image(corpus.path("alpha-wide.png"))
    image = assert_sendable(prepared).convert("RGB")
    assert image.size == (4096, 117)
    left = image.getpixel((100, 60))
    right = image.getpixel((4000, 60))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert left[0] > 150 and left[1] < 60  # the opaque red stays red
    assert min(right) > 245  # the transparent half is white, not black


def test_a_downscaled_cmyk_jpeg_becomes_rgb(corpus: Corpus) -> None:
    prepared = prepare_image(corpus.path("cmyk-wide.jpg"))
    image = assert_sendable(prepared)
    assert image.mode == "RGB" and image.size == (4096, 273)


def test_a_downscaled_rotated_jpeg_keeps_only_its_orientation_tag(corpus: Corpus) -> None:
    prepared = prepare_image(corpus.path("rotated-wide.jpg"))
    exif = assert_sendable(prepared).getexif()
    assert exif.get(0x0112) == 6
    assert 0x010F not in exif  # the camera maker (and GPS, ...) are not sent


def test_a_100_megapixel_jpeg_is_decoded_at_reduced_scale(corpus: Corpus) -> None:
    path = corpus.path("huge.jpg")
    info = inspect_image(path)
    assert (info.width, info.height, info.action) == (*HUGE_JPEG_SIZE, "downscale")
    prepared = prepare_image(path)
    image = assert_sendable(prepared)
    assert image.size == (4096, 2867)
    # DCT scaling at 1/2: never the full 12000 x 8400
    assert prepared.decoded_size == (6000, 4200)


# VmHWM is the peak RSS of this process image only; ru_maxrss would also count the forked
# copy of the (large) pytest process from before exec
_PEAK_RSS = """
import sys
from syncd.scan.prepare import prepare_image
prepared = prepare_image(sys.argv[1])
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(peak_kib * 1024, prepared.width, prepared.height)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc VmHWM")
def test_preparing_a_100_megapixel_jpeg_takes_far_less_memory_than_decoding_it(
    corpus: Corpus,
) -> None:
    path = corpus.path("huge.jpg")
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, os.fspath(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    peak, width, height = (int(v) for v in done.stdout.split())
    assert (width, height) == (4096, 2867)
    full_decode = HUGE_JPEG_SIZE[0] * HUGE_JPEG_SIZE[1] * 4  # Pillow keeps RGB in 4 bytes a pixel
    assert peak < full_decode * 0.75, f"peak RSS {peak >> 20} MiB"


def test_a_file_that_cannot_be_opened_raises_oserror_not_a_rejection(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        prepare_image(tmp_path / "gone.jpg")
    with pytest.raises(FileNotFoundError):
        inspect_image(tmp_path / "gone.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(OSError, match="not a regular file"):
        prepare_image(tmp_path / "pipe.jpg")


def test_preparing_on_many_threads_gives_the_same_results(corpus: Corpus) -> None:
    names = ["photo.jpg", "photo.png", "photo.webp", "photo.tiff", "cmyk-wide.jpg", "tiny.png"] * 4

    def outcome(name: str) -> bytes | str:
        try:
            return prepare_image(corpus.path(name)).data
        except ImageRejected as exc:
            return exc.reason

    for name in set(names):
        corpus.path(name)
    expected = {name: outcome(name) for name in set(names)}
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(outcome, names))
    assert got == [expected[name] for name in names]
