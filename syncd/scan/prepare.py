"""Image preparation (SPEC §4): the bytes to send for a library file, or one line saying why not.

Rules, from the API document's limits (``syncd.protocol``):

- JPEG (including camera "MPO" JPEGs), PNG, BMP and GIF files with both sides in
  15..4096 px and at most ``MAX_IMAGE_BYTES`` (3 MiB raw, i.e. 4 MiB as base64) are sent
  **byte for byte**. That covers CMYK JPEGs, 16-bit PNGs, animated GIFs (galleries index
  the first frame) and EXIF-rotated JPEGs: the orientation tag is the gallery's business,
  exactly as it is for an image a user searches with.
- Before such a file is sent, a cheap integrity check runs, because the gallery would
  only answer 216201 later: a JPEG is decoded at 1/8 scale (libjpeg still reads the whole
  entropy-coded stream, so a truncated or cut file fails), a PNG has every chunk CRC
  checked (``verify``, no inflate), BMP and GIF are decoded (first frame). A PNG with
  valid CRCs but a broken zlib stream is not caught; the gallery's answer covers it.
  A HEIF or AVIF file has its top-level box lengths checked against the file's length,
  at the scan already (a cut phone photo keeps a readable header, and newer pillow-heif
  releases open it from that header alone).
  This relies on Pillow's default ``ImageFile.LOAD_TRUNCATED_IMAGES = False``; syncd
  never changes it.
- Oversize images (a side over 4096 px, or over 3 MiB) are, with ``oversize="downscale"``,
  re-encoded as JPEG (quality 90, lowered and then scaled further until the bytes fit)
  with the longest side at most 4096 px; with ``"skip"`` they are rejected. A JPEG is
  decoded with libjpeg's DCT scaling (``draft``) at the smallest 1/2, 1/4 or 1/8 scale
  still at least the target size, so a 100-megapixel photo is never decoded in full.
- Other formats Pillow reads with a real signature (WebP, TIFF, HEIC/HEIF through
  ``pillow-heif``, AVIF, JPEG 2000, PPM, QOI, ICO) are converted to JPEG, first frame only.
  Transparency is flattened onto white; 16-bit samples are scaled to 8 bits; CMYK becomes
  RGB. A converted image is turned upright (its EXIF orientation applied; HEIF's own
  rotation and mirroring are applied by libheif), since the gallery never sees the
  source's tag. A downscaled JPEG/PNG/BMP/GIF keeps its pixels' orientation and only the
  EXIF orientation tag, as it would have been sent byte for byte within the limits.
  Re-encoded images keep no other metadata (GPS, camera) and only an RGB/grey ICC profile.
- Rejected (``ImageRejected`` with a one-line ``reason``): empty files, non-images,
  corrupt or truncated files, images under 15 px on the shortest side (or that would
  be after scaling down), decompression bombs over ``MAX_PIXELS``, and images whose
  decode would need more than ``MAX_DECODE_BYTES`` of memory.

Errors opening the file itself (vanished, permission denied) propagate as ``OSError``;
everything Pillow raises about the content becomes ``ImageRejected``.

Pillow's process-wide limit is set once, here, at import: ``Image.MAX_IMAGE_PIXELS =
MAX_PIXELS``, so Pillow never warns about an image syncd accepts; images over it are
refused by syncd's own check (Pillow itself raises ``DecompressionBombError`` only above
twice its limit), and Pillow's ``DecompressionBombWarning`` for those is silenced because
the rejection says it. pillow-heif's HEIF opener is registered with Pillow once, when the
first image is opened. Calls mutate no other global state and may run on many threads at once.
"""

from __future__ import annotations

import functools
import io
import os
import re
import warnings
from dataclasses import dataclass
from typing import IO, Final, Literal

from PIL import Image, UnidentifiedImageError, features

from syncd.errors import SyncdError
from syncd.protocol import MAX_IMAGE_B64_BYTES, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE
from syncd.scan.hashing import open_file

__all__ = [
    "MAX_DECODE_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_PIXELS",
    "ImageInfo",
    "ImageRejected",
    "PreparedImage",
    "inspect_image",
    "prepare_image",
]

Oversize = Literal["downscale", "skip"]
Action = Literal["as_is", "downscale", "convert"]

#: largest raw size whose base64 form fits the API's limit: 3 MiB (3145728 bytes)
MAX_IMAGE_BYTES: Final = MAX_IMAGE_B64_BYTES // 4 * 3
#: images with more pixels are decompression bombs, whatever their format
MAX_PIXELS: Final = 180_000_000
#: memory one decode may take (Pillow keeps 1, 2 or 4 bytes per pixel); bounds bombs and
#: huge non-JPEG files that cannot be decoded at a reduced scale
MAX_DECODE_BYTES: Final = 256 * 1024 * 1024
JPEG_QUALITIES: Final = (90, 80, 70)

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning, module="PIL.Image")

#: formats sent byte for byte, and the name the bytes go by
_SEND_AS: Final = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "BMP": "BMP", "GIF": "GIF"}
#: formats opened at all: each has a real signature (no guessing on arbitrary bytes), and
#: none runs an external program (EPS and PDF would start Ghostscript)
_WANTED_FORMATS: Final = (
    "JPEG", "PNG", "GIF", "BMP", "MPO", "WEBP", "TIFF", "AVIF", "HEIF", "JPEG2000", "PPM", "QOI",
    "ICO",
)  # fmt: skip
_JPEG_LIKE: Final = ("JPEG", "MPO")
#: formats stored as ISO base media boxes, whose lengths are checked against the file's
_BOXED: Final = ("HEIF", "AVIF")
_EXIF_ORIENTATION: Final = 0x0112
#: EXIF orientation -> the transpose that turns the pixels upright (as ImageOps.exif_transpose)
_UPRIGHT: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_BOMB_RE: Final = re.compile(r"\((\d+) pixels\)")


class ImageRejected(SyncdError):
    """The file cannot become an image the gallery takes; ``reason`` is one line saying why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: the file's format (Pillow's name, e.g. ``"WEBP"``), its size
    in pixels, and what ``prepare_image`` will do: send it ``"as_is"``, ``"downscale"`` it
    (a format the API takes, over the limits), or ``"convert"`` it to JPEG (scaled too if
    oversize)."""

    format: str
    width: int
    height: int
    action: Action


@dataclass(frozen=True)
class PreparedImage:
    """The bytes to send (``format`` is ``"JPEG"``, ``"PNG"``, ``"BMP"`` or ``"GIF"``), their
    size in pixels, and whether they were re-encoded. ``decoded_size`` is the size the source
    was decoded at for re-encoding (smaller than the source when JPEG DCT scaling was used),
    None when the file is sent as is."""

    data: bytes
    format: str
    width: int
    height: int
    converted: bool
    decoded_size: tuple[int, int] | None = None


@functools.cache
def _readable_formats() -> tuple[str, ...]:
    """The wanted formats this Pillow build reads, in the order they are tried (loads all
    plugins and registers pillow-heif's HEIF opener, once, on the first image opened)."""
    Image.init()
    # after init: AVIF files with a generic "mif1" brand must reach Pillow's AVIF first
    from pillow_heif import register_heif_opener

    register_heif_opener(thumbnails=False)
    # a Pillow without libavif registers AVIF but identifies nothing with it
    return tuple(
        name
        for name in _WANTED_FORMATS
        if name in Image.OPEN and (name != "AVIF" or features.check("avif"))
    )


def _one_line(exc: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _decode_failure(fmt: str, exc: Exception) -> ImageRejected:
    """The rejection for a decode error."""
    if isinstance(exc, ImageRejected):
        return exc
    if isinstance(exc, Image.DecompressionBombError):
        return _bomb(exc)
    text = _one_line(exc)
    if "truncat" in text.lower() or "end of file" in text.lower() or isinstance(exc, EOFError):
        return ImageRejected(f"truncated {fmt} ({text})")
    return ImageRejected(f"corrupt {fmt} ({text})")


def _bomb(exc: Image.DecompressionBombError) -> ImageRejected:
    """The rejection for Pillow's DecompressionBombError."""
    found = _BOMB_RE.search(str(exc))
    pixels = f"{found.group(1)} px" if found else "the image size"
    return ImageRejected(f"decompression bomb: {pixels} exceeds the limit of {MAX_PIXELS} px")


def _open_image(source: IO[bytes]) -> Image.Image:
    """Identify an image from its header, or raise ``ImageRejected``."""
    try:
        return Image.open(source, formats=_readable_formats())
    except Image.DecompressionBombError as exc:
        raise _bomb(exc) from None
    except UnidentifiedImageError:
        raise _unidentified(source) from None
    except Exception as exc:  # header parsers raise many kinds on crafted input
        raise ImageRejected(f"corrupt image header ({_one_line(exc)})") from None


def _unidentified(source: IO[bytes]) -> ImageRejected:
    """The rejection for a file no reader took: corrupt (with its reader's complaint) when it
    carries a wanted format's signature, such as a cut HEIC or AVIF; else not an image."""
    try:
        source.seek(0)
        prefix = source.read(16)
        for name in _readable_formats():
            factory, accept = Image.OPEN[name]
            if accept is None or accept(prefix) is not True:
                continue
            source.seek(0)
            try:
                factory(source, "").close()
            except Exception as exc:  # the reader's complaint is the reason
                return _decode_failure(name, exc)
    except OSError:
        pass  # the plain answer below is still true
    return ImageRejected("not an image (cannot identify image file)")


def _fit(width: int, height: int) -> tuple[int, int]:
    """The size with the longest side at most ``MAX_IMAGE_SIDE``, aspect kept, in pixels."""
    longest = max(width, height)
    if longest <= MAX_IMAGE_SIDE:
        return width, height
    scale = MAX_IMAGE_SIDE / longest
    return (
        min(MAX_IMAGE_SIDE, max(1, round(width * scale))),
        min(MAX_IMAGE_SIDE, max(1, round(height * scale))),
    )


def _draft_size(width: int, height: int, target: tuple[int, int]) -> tuple[int, int]:
    """The size libjpeg decodes at when asked for ``target`` (as Pillow's JPEG ``draft``)."""
    ratio = min(width // target[0], height // target[1])
    scale = next(s for s in (8, 4, 2, 1) if ratio >= s)
    return -(-width // scale), -(-height // scale)


def _bytes_per_pixel(mode: str) -> int:
    """Bytes Pillow keeps per pixel for ``mode`` in memory."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _plan(img: Image.Image, nbytes: int, oversize: Oversize) -> ImageInfo:
    """The verdict from the header: an ``ImageInfo``, or ``ImageRejected``."""
    fmt = img.format or "unknown format"
    width, height = img.size
    pixels = width * height
    if pixels > MAX_PIXELS:
        raise ImageRejected(f"decompression bomb: {pixels} px exceeds the limit of {MAX_PIXELS} px")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ImageRejected(
            f"image is {width}x{height} px; the gallery needs at least {MIN_IMAGE_SIDE} px "
            "on the shortest side"
        )
    sendable = fmt in _SEND_AS
    too_wide = max(width, height) > MAX_IMAGE_SIDE
    too_heavy = nbytes > MAX_IMAGE_BYTES
    if sendable and not too_wide and not too_heavy:
        return ImageInfo(fmt, width, height, "as_is")
    if oversize == "skip" and (too_wide or sendable):
        what = f"{width}x{height}" if too_wide else f"{nbytes} bytes (limit {MAX_IMAGE_BYTES})"
        raise ImageRejected(f'oversize {what} and oversize = "skip"')
    target = _fit(width, height)
    if min(target) < MIN_IMAGE_SIDE:
        raise ImageRejected(
            f"image is {width}x{height} px; scaled to {MAX_IMAGE_SIDE} px on the longest side "
            f"it would have less than {MIN_IMAGE_SIDE} px on the shortest"
        )
    decoded = _draft_size(width, height, target) if fmt in _JPEG_LIKE else (width, height)
    need = decoded[0] * decoded[1] * _bytes_per_pixel(img.mode)
    if need > MAX_DECODE_BYTES:
        raise ImageRejected(
            f"image is {width}x{height} px; decoding it needs {need >> 20} MiB, over the "
            f"limit of {MAX_DECODE_BYTES >> 20} MiB"
        )
    return ImageInfo(fmt, width, height, "downscale" if sendable else "convert")


def inspect_image(path: str | os.PathLike[str], oversize: Oversize = "downscale") -> ImageInfo:
    """The verdict on an image from its header alone (nothing is decoded).

    Raises ``ImageRejected`` for what the header already condemns (not an image, too small,
    a bomb, oversize with ``oversize="skip"``); a file that passes may still be rejected by
    ``prepare_image`` when its data turns out corrupt. ``OSError`` if it cannot be opened.
    """
    with open_file(path) as raw:
        nbytes = os.fstat(raw.fileno()).st_size
        if nbytes == 0:
            raise ImageRejected("empty file (0 bytes)")
        source = io.BufferedReader(raw, 1 << 14)
        with _open_image(source) as img:
            info = _plan(img, nbytes, oversize)
        if info.format in _BOXED:
            _check_boxes(source, nbytes, info.format)
        return info


def prepare_image(path: str | os.PathLike[str], oversize: Oversize = "downscale") -> PreparedImage:
    """The bytes to send for the image at ``path``, made now from the file (module docstring).

    Raises ``ImageRejected`` with a one-line reason, or ``OSError`` if the file cannot be
    opened or read. Files up to ``MAX_IMAGE_BYTES`` are read once into memory, and the
    bytes checked are the bytes returned.
    """
    with open_file(path) as raw:
        nbytes = os.fstat(raw.fileno()).st_size
        if nbytes == 0:
            raise ImageRejected("empty file (0 bytes)")
        data: bytes | None = None
        source: IO[bytes]
        if nbytes <= MAX_IMAGE_BYTES:
            data = _read_at_most(raw, MAX_IMAGE_BYTES + 1)
            if len(data) > MAX_IMAGE_BYTES:
                raise ImageRejected("file grew while being read (still being written?)")
            nbytes = len(data)
            source = io.BytesIO(data)
        else:
            source = io.BufferedReader(raw, 1 << 16)
        with _open_image(source) as img:
            info = _plan(img, nbytes, oversize)
            if info.format in _BOXED:
                _check_boxes(source, nbytes, info.format)
            if info.action == "as_is" and data is not None:
                _check_integrity(img, info.format)
                return PreparedImage(data, _SEND_AS[info.format], info.width, info.height, False)
            return _reencode(img, info, allow_shrink=oversize == "downscale")


def _check_boxes(source: IO[bytes], nbytes: int, fmt: str) -> None:
    """Refuse a HEIF or AVIF file whose top-level boxes do not end where the file ends.

    Why: these files are ISO base media boxes (``ftyp``, ``meta``, then ``mdat`` with the
    coded picture). A phone photo cut short keeps a whole ``meta`` box, and newer
    pillow-heif releases open it from ``meta`` alone, so only the decode would notice. Each
    box states its own length; walking the dozen top-level headers reads a few bytes each
    and catches the cut at the scan, whatever the reader's version.
    """
    offset = 0
    try:
        while offset < nbytes:
            source.seek(offset)
            header = source.read(16)
            if len(header) < 8:
                break
            size = int.from_bytes(header[:4], "big")
            kind = header[4:8].decode("latin-1")
            if size == 1:  # a 64-bit size follows the type
                if len(header) < 16:
                    break
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:  # the box runs to the end of the file
                return
            if size < 8:
                raise ImageRejected(f"corrupt {fmt} (a box of {size} bytes at byte {offset})")
            if offset + size > nbytes:
                raise ImageRejected(
                    f"truncated {fmt} (its '{kind}' box at byte {offset} needs {size} bytes; "
                    f"the file ends {offset + size - nbytes} bytes short)"
                )
            offset += size
    except OSError as exc:
        raise ImageRejected(f"corrupt {fmt} ({_one_line(exc)})") from None
    finally:
        source.seek(0)
    if offset != nbytes:
        raise ImageRejected(f"truncated {fmt} (its last box header is cut at byte {offset})")


def _read_at_most(raw: io.FileIO, limit: int) -> bytes:
    """Up to ``limit`` bytes from the start of ``raw`` (short reads are retried)."""
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = raw.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _check_integrity(img: Image.Image, fmt: str) -> None:
    """The cheap check that a file sent as is decodes (module docstring); ``ImageRejected``."""
    try:
        if fmt in _JPEG_LIKE:
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
        elif fmt == "PNG":
            img.verify()
        else:
            img.load()
    except Exception as exc:  # decoders raise many kinds on corrupt data
        raise _decode_failure(fmt, exc) from None


def _orientation(img: Image.Image) -> int:
    """The source's EXIF orientation (2..8), or 1 when upright, untagged or unreadable."""
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # a broken EXIF block is not worth rejecting the image for
        return 1
    return orientation if isinstance(orientation, int) and 2 <= orientation <= 8 else 1


def _orientation_exif(orientation: int) -> bytes:
    """An EXIF block holding only the orientation tag, or b"" when upright."""
    if orientation == 1:
        return b""
    exif = Image.Exif()
    exif[_EXIF_ORIENTATION] = orientation
    return exif.tobytes()


def _has_alpha(img: Image.Image) -> bool:
    """Whether the image has transparency to flatten."""
    return img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in img.info


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    """A 16/32-bit or float grey image as 8-bit "L", scaled (Pillow's convert would clip)."""
    if img.mode == "F":
        top = img.getextrema()[1]
        factor = 255.0 if isinstance(top, (int, float)) and top <= 1.0 else 1 / 256
        return img.point(lambda v: v * factor).convert("L")
    wide = img if img.mode == "I" else img.convert("I")
    top = wide.getextrema()[1]
    if img.mode != "I" or (isinstance(top, (int, float)) and top > 255):
        wide = wide.point(lambda v: v * (1 / 256))
    return wide.convert("L")


def _to_output_mode(img: Image.Image) -> Image.Image:
    """The image in "RGB" or "L", transparency flattened onto white."""
    if img.mode in ("RGB", "L"):
        return img
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if img.mode.startswith("I") or img.mode == "F":
        return _to_8bit_gray(img)
    if img.mode == "1":
        return img.convert("L")
    return img.convert("RGB")


def _reencode(img: Image.Image, info: ImageInfo, *, allow_shrink: bool) -> PreparedImage:
    """Decode (at reduced scale where the format allows), scale to fit, encode as JPEG."""
    fmt = info.format
    target = _fit(info.width, info.height)
    source_mode = img.mode
    icc = img.info.get("icc_profile")
    try:
        if fmt in _JPEG_LIKE and target != img.size:
            img.draft("RGB", target)
        decoded = img.size
        img.load()
        # read after loading: some plugins (TIFF in Pillow 11+) turn the pixels upright on load
        orientation = _orientation(img)
        frame: Image.Image = img
        if frame.mode in ("P", "PA", "1") or frame.mode.startswith("I") or frame.mode == "F":
            frame = _to_output_mode(frame)  # these modes do not resample well (or at all)
        if frame.size != target:
            frame = frame.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        frame = _to_output_mode(frame)
        # a converted image is made upright; a downscaled one keeps the tag it would be sent with
        if info.action == "convert" and orientation != 1:
            frame = frame.transpose(_UPRIGHT[orientation])
    except Exception as exc:  # decoders raise many kinds on corrupt data
        raise _decode_failure(fmt, exc) from None
    exif = b"" if info.action == "convert" else _orientation_exif(orientation)
    space = {"RGB": "RGB", "RGBA": "RGB", "L": "L"}.get(source_mode)
    if not isinstance(icc, bytes) or space != frame.mode:
        icc = None  # a CMYK or palette profile would misdescribe the converted pixels
    data, (width, height) = _encode_to_fit(frame, exif, icc, allow_shrink)
    return PreparedImage(data, "JPEG", width, height, True, decoded)


def _encode_to_fit(
    frame: Image.Image, exif: bytes, icc: bytes | None, allow_shrink: bool
) -> tuple[bytes, tuple[int, int]]:
    """JPEG bytes of ``frame`` within ``MAX_IMAGE_BYTES`` (lower quality, then smaller sides),
    and their size in pixels."""
    while True:
        for quality in JPEG_QUALITIES:
            out = io.BytesIO()
            frame.save(out, "JPEG", quality=quality, exif=exif, icc_profile=icc)
            if out.tell() <= MAX_IMAGE_BYTES:
                return out.getvalue(), frame.size
        if not allow_shrink:
            raise ImageRejected(
                f"oversize: {out.tell()} bytes as JPEG at quality {JPEG_QUALITIES[-1]} "
                f'(limit {MAX_IMAGE_BYTES}) and oversize = "skip"'
            )
        factor = min(0.9, (MAX_IMAGE_BYTES / out.tell()) ** 0.5)
        size = (int(frame.width * factor), int(frame.height * factor))
        if min(size) < MIN_IMAGE_SIDE:
            raise ImageRejected(
                f"image cannot be made smaller than {MAX_IMAGE_BYTES} bytes with at least "
                f"{MIN_IMAGE_SIDE} px on the shortest side"
            )
        frame = frame.resize(size, Image.Resampling.LANCZOS)
