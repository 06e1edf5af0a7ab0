"""Image preparation (docs/rules.md): the bytes to send for a library file, or one line
saying why not.

Rules, from the API document's limits (``syncd.api.baidu.limits``):

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
  re-encoded as JPEG (quality 90) with the longest side at most 4096 px; with ``"skip"``
  they are rejected. A JPEG is decoded with libjpeg's DCT scaling (``draft``) at the
  smallest 1/2, 1/4 or 1/8 scale still at least the target size, so a 100-megapixel photo
  is never decoded in full.
- The size and quality are chosen so that the bytes fit the first time: a picture is
  encoded once. What a JPEG at quality 90 will weigh is estimated before decoding: from
  the source's own bytes and quantization tables for a JPEG (its bytes at the quality it
  was saved at, scaled by how much finer or coarser quality 90 is), else from a ceiling of
  4 bits a pixel, and aimed at 85 % of the limit. A picture within the sides whose estimate
  is over (a phone's 12-megapixel JPEG of 3-4 MB, a HEIC of any size once it is a JPEG) is
  reduced by the smallest whole factor that brings it under: a JPEG decoded at 1/2, 1/4 or
  1/8 scale, which is that reduction, other formats reduced by averaging squares of
  pixels, so nothing is resampled. A 12-megapixel photo becomes 2016x1512 px, plenty for
  the gallery to find it by, in a quarter of the time and memory of decoding it whole.
  Only when the estimate was wrong is the picture encoded again, at quality 80 and 70,
  then scaled further until it fits.
- Other formats Pillow reads with a real signature (WebP, TIFF, HEIC/HEIF through
  ``pillow-heif``, AVIF, JPEG 2000, PPM, QOI, ICO) are converted to JPEG, first frame only.
  Transparency is flattened onto white; 16-bit samples are scaled to 8 bits; CMYK becomes
  RGB. A converted image is turned upright (its EXIF orientation applied; HEIF's own
  rotation and mirroring are applied by libheif), since the gallery never sees the
  source's tag. A downscaled JPEG/PNG/BMP/GIF keeps its pixels' orientation and only the
  EXIF orientation tag, as it would have been sent byte for byte within the limits.
  Re-encoded images keep no other metadata (GPS, camera) and only an RGB/grey ICC profile.
- Memory is bounded by what a file decodes to, not by its size on disk
  (``syncd.imaging``): before decoding, the peak of each step is worked out from the
  header (the frame in its mode, what the format's decoder holds beside it, the scaled
  result, the rows converted at a time) and held in the process-wide decode budget while
  the image is decoded, scaled and encoded; decodes that do not fit beside the others wait.
  A frame is never converted whole: palette, 1-bit, 16-bit and CMYK frames are converted
  to RGB or grey a band of rows at a time, each band scaled down as soon as it is made.
  A GIF or ICO whose header already shows more than ``MAX_PIXELS`` is refused before
  Pillow opens it (Pillow allocates for both on open).
- Rejected (``ImageRejected`` with a one-line ``reason``): empty files, non-images,
  corrupt or truncated files, images under 15 px on the shortest side (or that would
  be after scaling down), decompression bombs over ``MAX_PIXELS``, and images whose
  decode would need more than ``MAX_DECODE_BYTES`` (the whole budget), the reason naming
  the MiB needed and the limit.

Errors opening the file itself (vanished, permission denied) propagate as ``OSError``;
everything Pillow raises about the content becomes ``ImageRejected``.

Pillow's process-wide limit is set once, here, at import: ``Image.MAX_IMAGE_PIXELS =
MAX_PIXELS``, so Pillow never warns about an image syncd accepts; images over it are
refused by syncd's own check (Pillow itself raises ``DecompressionBombError`` only above
twice its limit), and Pillow's ``DecompressionBombWarning`` for those is silenced because
the rejection says it. pillow-heif's HEIF opener is registered with Pillow once, when the
first image is opened. Importing this module also fixes glibc's mmap threshold, so that
freed decodes go back to the system (``syncd.imaging``). Calls mutate no other global state
and may run on many threads at once; they share the process's decode budget, so a call may
wait for others' decodes to end.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass
from typing import IO, Final, Literal

from PIL import Image, UnidentifiedImageError

from syncd.api.baidu.limits import MAX_IMAGE_B64_BYTES, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE
from syncd.errors import SyncdError
from syncd.imaging import (
    DECODE_BUDGET,
    DECODE_BUDGET_BYTES,
    ImageRefused,
    TooManyPixels,
    band_converter,
    draft_size,
    forget_open_buffers,
    held_bytes,
    kept_bytes,
    load_bytes,
    mib,
    opening,
    orientation,
    output_mode,
    readable_formats,
    scaled,
    scaling_bytes,
    upright,
)
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
#: memory one decode may need at its peak (all of the process's decode budget); bounds
#: bombs and huge non-JPEG files that cannot be decoded at a reduced scale
MAX_DECODE_BYTES: Final = DECODE_BUDGET_BYTES
JPEG_QUALITIES: Final = (90, 80, 70)
#: bits a pixel a photograph takes as JPEG at quality 90, as a ceiling to plan with when the
#: source's bytes say nothing of it (any format but JPEG); phones' pictures take 2 to 2.5
_PLAN_BITS_PER_PIXEL: Final = 4.0
#: the share of ``MAX_IMAGE_BYTES`` a planned encode aims at, room for the estimate's error
_PLAN_SHARE: Final = 0.85
#: mean of libjpeg's luminance quantization table at quality 90 (its standard table x 0.2)
_Q90_TABLE_MEAN: Final = 11.5
#: whole factors a picture within the sides is reduced by, tried in turn: libjpeg's DCT
#: scales for a JPEG, any small factor for the others
_JPEG_REDUCTIONS: Final = (1, 2, 4, 8)
_REDUCTIONS: Final = (1, 2, 3, 4, 5, 6, 8)

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning, module="PIL.Image")

#: formats sent byte for byte, and the name the bytes go by
_SEND_AS: Final = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "BMP": "BMP", "GIF": "GIF"}
_JPEG_LIKE: Final = ("JPEG", "MPO")
#: formats stored as ISO base media boxes, whose lengths are checked against the file's
_BOXED: Final = ("HEIF", "AVIF")
_EXIF_ORIENTATION: Final = 0x0112
#: how much smaller a frame is first reduced by whole factors before it is resampled
_REDUCING_GAP: Final = 3.0
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
    """Identify an image from its header, or raise ``ImageRejected``. What Pillow allocates
    while opening (a GIF's disposal buffer, an ICO's embedded image) is held in the decode
    budget meanwhile."""
    try:
        with opening(source, MAX_PIXELS, readable_formats()):
            try:
                img = Image.open(source, formats=readable_formats())
            except UnidentifiedImageError:
                raise _unidentified(source) from None
            forget_open_buffers(img)
            return img
    except ImageRejected:
        raise
    except TooManyPixels as exc:
        raise ImageRejected(
            f"decompression bomb: {exc.pixels} px exceeds the limit of {MAX_PIXELS} px"
        ) from None
    except ImageRefused as exc:
        raise ImageRejected(f"opening the image: {exc.reason}") from None
    except Image.DecompressionBombError as exc:
        raise _bomb(exc) from None
    except Exception as exc:  # header parsers raise many kinds on crafted input
        raise ImageRejected(f"corrupt image header ({_one_line(exc)})") from None


def _unidentified(source: IO[bytes]) -> ImageRejected:
    """The rejection for a file no reader took: corrupt (with its reader's complaint) when it
    carries a wanted format's signature, such as a cut HEIC or AVIF; else not an image."""
    try:
        source.seek(0)
        prefix = source.read(16)
        for name in readable_formats():
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


@dataclass(frozen=True)
class _Output:
    """What a re-encode makes: the picture's ``size``, the ``draft`` size a JPEG is decoded
    at (libjpeg's scale at least that), and the whole factor ``reduce_by`` the source is
    reduced by to make it (1: resampled to ``size``, or as it is)."""

    size: tuple[int, int]
    draft: tuple[int, int]
    reduce_by: int = 1


def _estimated_bytes(img: Image.Image, nbytes: int, factor: int) -> float:
    """What the picture reduced by ``factor`` is estimated to weigh as a JPEG at quality 90
    (module docstring): a JPEG's bytes fall less than its pixels when it is reduced (its
    detail is packed closer), so they are taken to fall with the factor, not its square."""
    if img.format in _JPEG_LIKE:
        tables = getattr(img, "quantization", None) or {}
        luma = tables.get(0)
        finer = 1.5
        if luma:
            finer = 1.1 * (sum(luma) / len(luma) / _Q90_TABLE_MEAN) ** 0.5
        return nbytes / factor * finer
    return img.width * img.height / factor**2 * _PLAN_BITS_PER_PIXEL / 8


def _output(img: Image.Image, nbytes: int, allow_shrink: bool) -> _Output:
    """The size a re-encode of ``img`` makes (module docstring): the sides' fit, or the
    smallest whole reduction whose JPEG is estimated to fit the byte limit."""
    width, height = img.size
    fit = _fit(width, height)
    if fit != img.size or not allow_shrink:
        return _Output(fit, fit)
    jpeg = img.format in _JPEG_LIKE
    chosen = 1
    for factor in _JPEG_REDUCTIONS if jpeg else _REDUCTIONS:
        if min(-(-width // factor), -(-height // factor)) < MIN_IMAGE_SIDE:
            break
        chosen = factor
        if _estimated_bytes(img, nbytes, factor) <= _PLAN_SHARE * MAX_IMAGE_BYTES:
            break
    size = (-(-width // chosen), -(-height // chosen))
    if jpeg:  # libjpeg's scale 1/chosen makes exactly ``size``
        return _Output(size, (width // chosen, height // chosen))
    return _Output(size, size, chosen)


def _decode_need(img: Image.Image, output: _Output, nbytes: int) -> int:
    """Bytes held at the peak of re-encoding ``img`` (not yet drafted or loaded) as
    ``output``: loading it (at the JPEG draft size), scaling it into the result a band at
    a time, and turning the result upright or shrinking it while it is encoded."""
    target = output.size
    decoded = draft_size(img.size, output.draft) if img.format in _JPEG_LIKE else img.size
    result = held_bytes(output_mode(img), target)
    return max(
        load_bytes(img, decoded, nbytes),
        kept_bytes(img, decoded, nbytes) + result + scaling_bytes(decoded, target, _REDUCING_GAP),
        2 * result + 2 * MAX_IMAGE_BYTES,
    )


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
    need = _decode_need(img, _output(img, nbytes, oversize == "downscale"), nbytes)
    if need > MAX_DECODE_BYTES:
        raise ImageRejected(
            f"image is {width}x{height} px; decoding it needs {mib(need)} MiB, over the "
            f"limit of {mib(MAX_DECODE_BYTES)} MiB"
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
            return _reencode(img, info, nbytes, allow_shrink=oversize == "downscale")


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
    eighth = (max(1, img.width // 8), max(1, img.height // 8))
    if fmt in _JPEG_LIKE:
        need = load_bytes(img, draft_size(img.size, eighth))
    else:
        need = 0 if fmt == "PNG" else load_bytes(img)
    try:
        with DECODE_BUDGET.reserve(need):
            if fmt in _JPEG_LIKE:
                img.draft("RGB", eighth)
                img.load()
            elif fmt == "PNG":
                img.verify()
            else:
                img.load()
    except Exception as exc:  # decoders raise many kinds on corrupt data
        raise _decode_failure(fmt, exc) from None


def _orientation_exif(orientation: int) -> bytes:
    """An EXIF block holding only the orientation tag, or b"" when upright."""
    if orientation == 1:
        return b""
    exif = Image.Exif()
    exif[_EXIF_ORIENTATION] = orientation
    return exif.tobytes()


def _reencode(
    img: Image.Image, info: ImageInfo, nbytes: int, *, allow_shrink: bool
) -> PreparedImage:
    """Decode (at reduced scale where the format allows), scale to fit while converting a
    band at a time, encode as JPEG; all within the decode budget (module docstring)."""
    fmt = info.format
    output = _output(img, nbytes, allow_shrink)
    target = output.size
    source_mode = img.mode
    icc = img.info.get("icc_profile")
    need = _decode_need(img, output, nbytes)
    try:
        DECODE_BUDGET.check(need)  # as ``_plan`` did: a decode never waits for what cannot be
    except ImageRefused as exc:
        raise ImageRejected(f"image is {info.width}x{info.height} px; {exc.reason}") from None
    with DECODE_BUDGET.reserve(need):
        try:
            if fmt in _JPEG_LIKE and target != img.size:
                img.draft("RGB", output.draft)
            decoded = img.size
            img.load()
            # read after loading: some plugins (TIFF in Pillow 11+) turn the pixels upright
            turn = orientation(img)
            if img.mode == output_mode(img) and (output.reduce_by > 1 or img.size == target):
                # RGB or grey already, no band to convert: reduced whole, or taken as it is
                # (a JPEG decoded at the size sent)
                frame = img.reduce(output.reduce_by) if output.reduce_by > 1 else img
            else:
                frame = scaled(
                    img,
                    target,
                    band_converter(img),
                    Image.Resampling.LANCZOS,
                    _REDUCING_GAP,
                    output.reduce_by,
                )
            if frame is not img:
                img.close()  # the source frame is not needed any more: let its memory go
            # a converted image is made upright; a downscaled one keeps the tag it is sent with
            if info.action == "convert":
                frame = upright(frame, turn)
        except Exception as exc:  # decoders raise many kinds on corrupt data
            raise _decode_failure(fmt, exc) from None
        exif = b"" if info.action == "convert" else _orientation_exif(turn)
        space = {"RGB": "RGB", "RGBA": "RGB", "L": "L"}.get(source_mode)
        if not isinstance(icc, bytes) or space != frame.mode:
            icc = None  # a CMYK or palette profile would misdescribe the converted pixels
        data, (width, height) = _encode_to_fit(frame, exif, icc, allow_shrink)
    return PreparedImage(data, "JPEG", width, height, True, decoded)


def _encode_to_fit(
    frame: Image.Image, exif: bytes, icc: bytes | None, allow_shrink: bool
) -> tuple[bytes, tuple[int, int]]:
    """JPEG bytes of ``frame`` within ``MAX_IMAGE_BYTES``, and their size in pixels. The
    first encode fits when ``_output`` estimated well; else lower qualities are tried, then
    smaller sides."""
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
