"""What each call sends: validated form fields per gallery and operation, and the body encoder.

Everything here is checked before a call is made; a refusal raises
``syncd.errors.ValidationError`` with a one-line reason and nothing is sent.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from syncd.api.baidu.galleries import Gallery, Operation
from syncd.api.baidu.limits import (
    MAX_BRIEF_BYTES,
    MAX_DELETE_BATCH,
    MAX_IMAGE_B64_BYTES,
    MAX_TAGS,
    MAX_URL_BYTES,
    PN_MAX,
    PN_MIN,
    RN_MAX,
    RN_MIN,
    TAG_MAX,
    TAG_MIN,
)
from syncd.errors import ValidationError

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class CallParams:
    """The form of one call: small text fields in order, and the raw image bytes if any.

    The image is kept raw and base64-encoded once, while the body is built.
    """

    op: Operation
    fields: tuple[tuple[str, str], ...] = ()
    image: bytes | None = field(default=None, repr=False)


def base64_length(raw_bytes: int) -> int:
    """Length in bytes of the base64 text of ``raw_bytes`` bytes (with padding)."""
    return 4 * ((raw_bytes + 2) // 3)


def _image_pieces(image: bytes) -> list[bytes | memoryview]:
    """The ``image`` form value in pieces: base64 with ``+``, ``/`` and ``=`` percent-encoded.

    base64 text needs no other escaping, so two byte replaces beat a general urlencode;
    ``=`` only pads the end, so it is cut off and appended encoded instead of replaced.
    """
    text = binascii.b2a_base64(image, newline=False)
    padding = 2 if text.endswith(b"==") else 1 if text.endswith(b"=") else 0
    escaped = text.replace(b"+", b"%2B").replace(b"/", b"%2F")
    return [memoryview(escaped)[: len(escaped) - padding], b"%3D" * padding]


def encode_form(params: CallParams) -> bytes:
    """The ``application/x-www-form-urlencoded`` body of ``params`` (image first), in one copy."""
    pieces: list[bytes | memoryview] = []
    if params.image is not None:
        pieces += [b"image=", *_image_pieces(params.image)]
    for name, value in params.fields:
        if pieces:
            pieces.append(b"&")
        pieces.append(f"{quote(name, safe='')}={quote(value, safe='')}".encode("ascii"))
    return b"".join(pieces)


def _source_fields(
    op: Operation,
    image: bytes | None,
    url: str | None,
    cont_sign: str | None = None,
    *,
    cont_sign_allowed: bool = False,
) -> tuple[tuple[tuple[str, str], ...], bytes | None]:
    """Check that exactly one image input is given and return its text field or raw image."""
    given = [name for name, value in (("image", image), ("url", url)) if value is not None]
    if cont_sign_allowed and cont_sign is not None:
        given.append("cont_sign")
    allowed = "image, url or cont_sign" if cont_sign_allowed else "image or url"
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise ValidationError(f"{op} needs exactly one of {allowed}, got {what}")
    if image is not None:
        if not isinstance(image, bytes | bytearray | memoryview):
            raise ValidationError(f"{op}: image must be bytes, got {type(image).__name__}")
        if len(image) == 0:
            raise ValidationError(f"{op}: image is empty")
        size = base64_length(len(image))
        if size > MAX_IMAGE_B64_BYTES:
            raise ValidationError(
                f"{op}: image is {size} bytes in base64, the API takes at most "
                f"{MAX_IMAGE_B64_BYTES}"
            )
        return (), bytes(image)
    if url is not None:
        _check_url(op, url)
        return (("url", url),), None
    assert cont_sign is not None
    return (("cont_sign", cont_sign),), None


def _check_url(op: Operation, url: str) -> None:
    size = len(url.encode("utf-8"))
    if size == 0 or size > MAX_URL_BYTES:
        raise ValidationError(f"{op}: url must be 1 to {MAX_URL_BYTES} bytes, got {size}")
    if not url.lower().startswith(("http://", "https://")):
        raise ValidationError(f"{op}: url must start with http:// or https://")


def _check_cont_sign(op: Operation, cont_sign: str) -> None:
    if not isinstance(cont_sign, str) or not cont_sign.strip():
        raise ValidationError(f"{op}: cont_sign must be a non-empty string")
    if ";" in cont_sign:
        raise ValidationError(f"{op}: cont_sign {cont_sign!r} must not contain ';'")


def _brief_fields(op: Operation, brief: str | None) -> tuple[tuple[str, str], ...]:
    if brief is None:
        return ()
    if not isinstance(brief, str):
        raise ValidationError(f"{op}: brief must be a string, got {type(brief).__name__}")
    size = len(brief.encode("utf-8"))
    if size > MAX_BRIEF_BYTES:
        raise ValidationError(
            f"{op}: brief is {size} bytes in UTF-8, the API takes at most {MAX_BRIEF_BYTES}"
        )
    return (("brief", brief),)


def _tag_fields(
    gallery: Gallery, op: Operation, tags: Sequence[int]
) -> tuple[tuple[str, str], ...]:
    """``tags=a,b`` for same_hq/similar; ``class_id1``/``class_id2`` for product."""
    if isinstance(tags, str | bytes):
        raise ValidationError(f"{op}: tags must be a sequence of ints, got a string")
    values = list(tags)
    if len(values) > MAX_TAGS:
        raise ValidationError(f"{op}: at most {MAX_TAGS} tags, got {len(values)}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"{op}: tag {value!r} is not an integer")
        if not TAG_MIN <= value <= TAG_MAX:
            raise ValidationError(f"{op}: tag {value} is outside {TAG_MIN}..{TAG_MAX}")
    if not values:
        return ()
    if gallery.tag_style == "class_id":
        return tuple((f"class_id{i}", str(v)) for i, v in enumerate(values, start=1))
    return (("tags", ",".join(str(v) for v in values)),)


def _int_field(
    op: Operation, name: str, value: int | None, low: int, high: int
) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{op}: {name} {value!r} is not an integer")
    if not low <= value <= high:
        raise ValidationError(f"{op}: {name} {value} is outside {low}..{high}")
    return ((name, str(value)),)


def add_params(
    gallery: Gallery,
    *,
    image: bytes | None,
    url: str | None,
    brief: str | None,
    tags: Sequence[int],
) -> CallParams:
    """The form of an add: one image input, brief (required on same_hq), tags."""
    source, raw = _source_fields("add", image, url)
    if gallery.brief_required and not brief:
        raise ValidationError(f"add: {gallery.name} requires a non-empty brief")
    fields = source + _brief_fields("add", brief) + _tag_fields(gallery, "add", tags)
    return CallParams("add", fields, raw)


def search_params(
    gallery: Gallery,
    *,
    image: bytes | None,
    url: str | None,
    tags: Sequence[int],
    tag_logic: int | None,
    pn: int | None,
    rn: int | None,
) -> CallParams:
    """The form of a search: one image input, optional tag filter, logic and page."""
    source, raw = _source_fields("search", image, url)
    fields = (
        source
        + _tag_fields(gallery, "search", tags)
        + _int_field("search", "tag_logic", tag_logic, 0, 1)
        + _int_field("search", "pn", pn, PN_MIN, PN_MAX)
        + _int_field("search", "rn", rn, RN_MIN, RN_MAX)
    )
    return CallParams("search", fields, raw)


def update_params(
    gallery: Gallery,
    *,
    image: bytes | None,
    url: str | None,
    cont_sign: str | None,
    brief: str | None,
    tags: Sequence[int] | None,
) -> CallParams:
    """The form of an update: one item (image, url or a single cont_sign), new brief and/or tags.

    ``tags=None`` (or empty) leaves the item's tags as they are.
    """
    if cont_sign is not None:
        _check_cont_sign("update", cont_sign)
    source, raw = _source_fields("update", image, url, cont_sign, cont_sign_allowed=True)
    if brief is None and not tags:
        raise ValidationError("update needs a brief or tags to change")
    fields = source + _brief_fields("update", brief) + _tag_fields(gallery, "update", tags or ())
    return CallParams("update", fields, raw)


def delete_params(
    gallery: Gallery,
    *,
    image: bytes | None,
    url: str | None,
    cont_signs: Sequence[str] | None,
) -> CallParams:
    """The form of a delete: by image, by url, or a batch of 1..1000 cont_signs (``;``-joined)."""
    joined: str | None = None
    if cont_signs is not None:
        if isinstance(cont_signs, str):
            raise ValidationError("delete: cont_signs must be a list of strings, not one string")
        signs = list(cont_signs)
        if not 1 <= len(signs) <= MAX_DELETE_BATCH:
            raise ValidationError(
                f"delete: a batch holds 1 to {MAX_DELETE_BATCH} cont_signs, got {len(signs)}"
            )
        for sign in signs:
            _check_cont_sign("delete", sign)
        joined = ";".join(signs)
    source, raw = _source_fields("delete", image, url, joined, cont_sign_allowed=True)
    return CallParams("delete", source, raw)
