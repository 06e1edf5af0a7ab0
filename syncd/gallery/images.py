"""Image input of the local gallery: base64 or URL -> one decoded, validated picture.

Validation follows the API document, in the order the gallery answers:
216200 empty, 216202 base64 over 4 MiB, 216203 bad base64, 216201 not JPEG/PNG/BMP/GIF
or undecodable, 216202 a side under 15 px or over 4096 px. Each image is decoded once
per request; everything the index needs is derived from that one decode.

Decoding is held in the process's decode budget (``syncd.imaging``), which the embedded
gallery shares with the sync workers and the console: the peak of the decode and of what
is derived from it is reserved first (a request waits while others' decodes fill the
budget), and an image whose decode alone would need more than the whole budget answers
216202, the API's image size error, naming the MiB needed and the limit.

Everything the index keeps is made at ``WORK_SIDE`` pixels or smaller, so a large JPEG
(a phone's 12-megapixel photo) is decoded at libjpeg's reduced scale (1/2, 1/4 or 1/8),
the smallest that keeps its longest side at least ``DECODE_SIDE`` (a 12-megapixel photo
at 1/2: a quarter of the memory, and a third of the time, since only reading the coded
data stays whole). Its cont_sign is a hash of those pixels:
the same file, or the same picture with other metadata, signs the same; pictures that
differ only in detail finer than the scale decoded (coefficients libjpeg's scaled
decode leaves out) would sign the same too, and are the same image to the index anyway.
Other formats have no reduced decode and are decoded whole.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import requests
from PIL import Image, UnidentifiedImageError

from syncd.api.baidu.codes import error_for
from syncd.api.baidu.limits import (
    MAX_IMAGE_B64_BYTES,
    MAX_IMAGE_SIDE,
    MAX_URL_BYTES,
    MIN_IMAGE_SIDE,
)
from syncd.errors import ApiError
from syncd.gallery.keypoints import MIN_KEYPOINT_SIDE, WORK_SIDE
from syncd.imaging import (
    BAND_PIXELS,
    DECODE_BUDGET,
    ImageRefused,
    draft_size,
    held_bytes,
    load_bytes,
    open_image,
)

#: Pillow format names the API takes (MPO is how Pillow names many camera JPEGs)
ACCEPTED_FORMATS: Final = frozenset({"JPEG", "MPO", "PNG", "BMP", "GIF"})
#: the readers tried, in order (Pillow's JPEG reader opens MPO too); no other is started
_OPENED_FORMATS: Final = ("JPEG", "PNG", "GIF", "BMP")
#: a band of rows signed and flattened at a time: its crop, converted, its bytes, the white
#: it is composited on and the composite, in RGB
_BAND_BYTES: Final = 24 * BAND_PIXELS

#: largest download accepted from a url input, bytes
URL_MAX_BYTES: Final = 10 * 1024 * 1024
#: seconds a url download may take in all (connect, each read, and the whole body)
URL_TIMEOUT: Final = 10.0
#: largest raw image accepted from a url: what fits in the base64 limit
URL_MAX_IMAGE_BYTES: Final = MAX_IMAGE_B64_BYTES * 3 // 4

#: side of the square thumbnail all features are computed from, pixels
THUMB_SIDE: Final = 32
#: a JPEG is decoded at the smallest of libjpeg's scales that keeps its longest side at
#: least this many pixels (module docstring)
DECODE_SIDE: Final = 2 * WORK_SIDE
#: libjpeg's reduced scales, largest reduction first
_JPEG_SCALES: Final = (8, 4, 2)


@dataclass(frozen=True)
class DecodedImage:
    """One accepted input image, reduced to what the gallery keeps of it.

    ``cont_sign`` is a deterministic function of the decoded pixels; ``thumb`` is a
    32x32 RGB thumbnail (uint8, shape (32, 32, 3)) the global features are derived from;
    ``grey`` the grey working image the local features (keypoints) are found on, its
    longest side WORK_SIDE pixels (None: the picture is under MIN_KEYPOINT_SIDE pixels).
    """

    cont_sign: str
    width: int
    height: int
    format: str
    thumb: npt.NDArray[np.uint8]
    grey: npt.NDArray[np.uint8] | None = None


def _refuse(code: int, detail: str = "") -> ApiError:
    message = error_for(code).message
    return error_for(code, f"{message}: {detail}" if detail else message)


def decode_base64_image(value: str) -> DecodedImage:
    """Decode and validate the ``image`` parameter (base64 text, no data: header).

    Raises ApiError 216200/216201/216202/216203 as the API document describes.
    """
    if not value:
        raise _refuse(216200)
    if len(value) > MAX_IMAGE_B64_BYTES:
        raise _refuse(216202, "base64 over 4 MiB")
    try:
        raw = binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise _refuse(216203) from exc
    return decode_image_bytes(raw)


def decode_image_bytes(raw: bytes) -> DecodedImage:
    """Decode and validate an encoded image (216200/216201/216202), within the decode
    budget until everything the index keeps is derived (module docstring)."""
    if not raw:
        raise _refuse(216200)
    with ExitStack() as held:
        try:
            with warnings.catch_warnings():
                # the side limit below is stricter than Pillow's decompression-bomb guard
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = held.enter_context(
                    open_image(io.BytesIO(raw), _OPENED_FORMATS, MAX_IMAGE_SIDE * MAX_IMAGE_SIDE)
                )
                fmt = image.format or ""
                if fmt not in ACCEPTED_FORMATS:
                    raise _refuse(216201, "not JPEG, PNG, BMP or GIF")
                width, height = image.size
                if min(width, height) < MIN_IMAGE_SIDE or max(width, height) > MAX_IMAGE_SIDE:
                    raise _refuse(216202, f"{width}x{height} px")
                draft = _draft_request(image)
                held.enter_context(DECODE_BUDGET.reserve(_decode_need(image, len(raw), draft)))
                if draft is not None:
                    image.draft(None, draft)
                image.load()
                cont_sign, rgb = _signed_on_white(image)
        except ApiError:
            raise
        except ImageRefused as exc:
            raise _refuse(216202, exc.reason) from None
        except Image.DecompressionBombError:
            # Pillow refuses it on open, before any side is known to us: a size error
            raise _refuse(216202, "too many pixels") from None
        except UnidentifiedImageError as exc:
            raise _refuse(216201, "not JPEG, PNG, BMP or GIF") from exc
        except Exception as exc:  # Pillow raises many types on corrupt data; all mean "undecodable"
            raise _refuse(216201, "cannot decode") from exc
        return DecodedImage(
            cont_sign=cont_sign,
            width=width,
            height=height,
            format="JPEG" if fmt == "MPO" else fmt,
            thumb=_thumbnail(rgb),
            # small pictures are matched by their global features only
            grey=_working_grey(rgb) if max(width, height) >= MIN_KEYPOINT_SIDE else None,
        )


def _signed_mode(image: Image.Image) -> str:
    """The mode the pixels are signed in: "RGBA" with transparency, else "RGB"."""
    return "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB"


def _draft_request(image: Image.Image) -> tuple[int, int] | None:
    """The size to ``draft`` the opened JPEG ``image`` at (libjpeg's scale 1/s for the
    largest s whose longest side stays at least ``DECODE_SIDE`` and shortest at least
    ``MIN_IMAGE_SIDE``), or None to decode it whole (other formats, smaller pictures)."""
    if image.format not in ("JPEG", "MPO"):
        return None
    width, height = image.size
    for scale in _JPEG_SCALES:
        if (
            -(-max(width, height) // scale) >= DECODE_SIDE
            and -(-min(width, height) // scale) >= MIN_IMAGE_SIDE
        ):
            # libjpeg makes ceil(side / scale); asking for side // scale picks exactly it
            return width // scale, height // scale
    return None


def _decode_need(image: Image.Image, nbytes: int, draft: tuple[int, int] | None = None) -> int:
    """Bytes held at the peak of decoding the opened ``image`` (``nbytes`` encoded; at
    ``draft`` size when given) and deriving its features: the frame, its RGB copy on white
    (unless it is one already), a band being signed, then the grey working copy and its
    reduction."""
    size = image.size if draft is None else draft_size(image.size, draft)
    frame = held_bytes(image.mode, size)
    own = image.mode == _signed_mode(image) == "RGB"
    rgb = 0 if own else held_bytes("RGB", size)
    grey = held_bytes("L", size)
    return max(
        load_bytes(image, size, nbytes=nbytes),
        frame + rgb + _BAND_BYTES,
        frame + rgb + 2 * grey + _BAND_BYTES,
    )


def _signed_on_white(image: Image.Image) -> tuple[str, Image.Image]:
    """The loaded picture's cont_sign, and its RGB pixels with alpha composited on white;
    made a band of rows at a time, so no whole converted copy is held beside the frame.

    cont_sign is two uint32 of a hash of the decoded pixels in ``_signed_mode``, "A,B" as
    the API writes it; bands hash what the whole converted picture would.
    """
    mode = _signed_mode(image)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{mode}:{image.width}x{image.height}:".encode())
    own = image.mode == mode == "RGB"
    rgb = image if own else Image.new("RGB", image.size)
    rows = max(1, BAND_PIXELS // image.width)
    for top in range(0, image.height, rows):
        band = image.crop((0, top, image.width, min(image.height, top + rows)))
        if not own:
            band = band.convert(mode)
            rgb.paste(_on_white(band), (0, top))
        digest.update(band.tobytes())
    value = digest.digest()
    return f"{int.from_bytes(value[:4], 'big')},{int.from_bytes(value[4:], 'big')}", rgb


def _on_white(pixels: Image.Image) -> Image.Image:
    """The picture in RGB, alpha composited on white."""
    if pixels.mode == "RGBA":
        background = Image.new("RGBA", pixels.size, (255, 255, 255, 255))
        pixels = Image.alpha_composite(background, pixels)
    return pixels.convert("RGB")


def _thumbnail(rgb: Image.Image) -> npt.NDArray[np.uint8]:
    """A 32x32 RGB area-average of the whole picture."""
    small = rgb.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX, reducing_gap=2.0)
    return np.asarray(small, dtype=np.uint8).copy()


def _working_grey(rgb: Image.Image) -> npt.NDArray[np.uint8]:
    """The grey picture scaled so that its longest side is WORK_SIDE pixels."""
    factor = WORK_SIDE / max(rgb.width, rgb.height)
    size = (max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor)))
    grey = rgb.convert("L").resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(grey, dtype=np.uint8).copy()


def fetch_url_image(url: str, timeout: float = URL_TIMEOUT) -> DecodedImage:
    """Download ``url`` (http or https) and decode it.

    Raises ApiError 282114 (url empty or over 1024 bytes), 282112 (download over
    ``timeout`` seconds, 10 by default), 282113 (not http(s), unreachable, not a 200 answer), or the image errors.
    """
    if not url or len(url.encode("utf-8", "surrogatepass")) > MAX_URL_BYTES:
        raise _refuse(282114)
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise _refuse(282113, "only http and https urls")
    deadline = time.monotonic() + timeout
    body = bytearray()
    try:
        with requests.get(url, stream=True, timeout=timeout) as answer:
            if answer.status_code != 200:
                raise _refuse(282113, f"HTTP {answer.status_code}")
            for chunk in answer.iter_content(64 * 1024):
                body += chunk
                if len(body) > URL_MAX_BYTES:
                    raise _refuse(216202, "download over 10 MiB")
                if time.monotonic() > deadline:
                    raise _refuse(282112)
    except ApiError:
        raise
    except requests.Timeout as exc:
        raise _refuse(282112) from exc
    except (requests.RequestException, ValueError, UnicodeError) as exc:
        raise _refuse(282113) from exc
    if len(body) > URL_MAX_IMAGE_BYTES:
        raise _refuse(216202, "image over the base64 limit")
    return decode_image_bytes(bytes(body))
