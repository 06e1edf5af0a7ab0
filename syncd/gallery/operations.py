"""The four operations of each gallery: parameters in, result or ApiError out.

Parameters are checked as the API document lists them, cheap ones first, before the
image is decoded: 216100 invalid (tags, class ids, tag_logic, pn/rn, cont_sign),
216101 no image/url/cont_sign or nothing to update, 282003 no brief where required,
216103 brief over 256 bytes. The image comes from ``image`` (base64) before ``url``
before ``cont_sign``, as the document orders them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

from syncd.api.baidu.codes import error_for
from syncd.api.baidu.galleries import Gallery, Operation
from syncd.api.baidu.limits import (
    DEFAULT_SEARCH_RN,
    MAX_BRIEF_BYTES,
    MAX_DELETE_BATCH,
    MAX_TAGS,
    PN_MAX,
    PN_MIN,
    RN_MAX,
    RN_MIN,
    TAG_MAX,
    TAG_MIN,
)
from syncd.errors import ApiError
from syncd.gallery.galleries import Galleries, MetaChange
from syncd.gallery.images import (
    URL_TIMEOUT,
    DecodedImage,
    decode_base64_image,
    fetch_url_image,
)
from syncd.gallery.index import TagFilter

Params = Mapping[str, str]
Result = dict[str, object]

_DIGITS: Final = re.compile(r"[0-9]{1,10}")
_CONT_SIGN: Final = re.compile(r"[0-9]{1,20},[0-9]{1,20}")


def _invalid(detail: str) -> ApiError:
    return error_for(216100, f"invalid param: {detail}")


def _int_param(params: Params, name: str, low: int, high: int) -> int | None:
    """An integer parameter in low..high; None when absent or empty; else 216100."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if not _DIGITS.fullmatch(value) or not low <= int(value) <= high:
        raise _invalid(f"{name} must be an integer in {low}..{high}")
    return int(value)


def _tags_param(params: Params) -> tuple[int, ...] | None:
    """The ``tags`` parameter: up to two integers 1..65535, comma separated."""
    value = params.get("tags")
    if value is None or value == "":
        return None
    pieces = value.split(",")
    if len(pieces) > MAX_TAGS:
        raise _invalid(f"at most {MAX_TAGS} tags")
    tags = []
    for piece in pieces:
        if not _DIGITS.fullmatch(piece) or not TAG_MIN <= int(piece) <= TAG_MAX:
            raise _invalid(f"tags must be integers in {TAG_MIN}..{TAG_MAX}")
        tags.append(int(piece))
    return tuple(tags)


def _brief_param(params: Params, required: bool) -> str | None:
    brief = params.get("brief")
    if required and not brief:
        raise error_for(282003, "missing parameters: brief")
    if brief is not None and len(brief.encode("utf-8", "surrogatepass")) > MAX_BRIEF_BYTES:
        raise error_for(216103, f"param too long: brief over {MAX_BRIEF_BYTES} bytes")
    return brief


def _cont_sign_param(value: str) -> str:
    if not _CONT_SIGN.fullmatch(value):
        raise _invalid("cont_sign must look like 4261577168,501945506")
    return value


def _tag_values(gallery: Gallery, params: Params) -> tuple[int | None, int | None]:
    """(tag1, tag2) an add or update sets; None where the request says nothing."""
    if gallery.tag_style == "class_id":
        return (
            _int_param(params, "class_id1", TAG_MIN, TAG_MAX),
            _int_param(params, "class_id2", TAG_MIN, TAG_MAX),
        )
    tags = _tags_param(params)
    if tags is None:
        return None, None
    padded = (*tags, 0, 0)
    return padded[0], padded[1]


def _tag_filter(gallery: Gallery, params: Params) -> TagFilter:
    """Which items a search considers: tags in any slot, or class ids by position."""
    logic = params.get("tag_logic", "")
    if logic not in ("", "0", "1"):
        raise _invalid("tag_logic must be 0 or 1")
    wanted: list[tuple[int, int | None]] = []
    if gallery.tag_style == "class_id":
        for position, name in enumerate(("class_id1", "class_id2")):
            value = _int_param(params, name, TAG_MIN, TAG_MAX)
            if value is not None:
                wanted.append((value, position))
    else:
        wanted.extend((tag, None) for tag in _tags_param(params) or ())
    return TagFilter(tuple(wanted), any_of=logic == "1")


class Operations:
    """Runs add/search/update/delete of one gallery against the shared Galleries."""

    def __init__(self, galleries: Galleries, url_timeout: float = URL_TIMEOUT) -> None:
        self._galleries = galleries
        #: seconds a url input may take to download (282112 beyond)
        self.url_timeout = url_timeout
        self._handlers: dict[Operation, Callable[[Gallery, Params], Result]] = {
            "add": self._add,
            "search": self._search,
            "update": self._update,
            "delete": self._delete,
        }

    def run(self, gallery: Gallery, op: Operation, params: Params) -> Result:
        """The result fields of one call (without log_id); raises ApiError on refusal."""
        return self._handlers[op](gallery, params)

    def _image_param(self, params: Params) -> DecodedImage | None:
        """The image of ``image`` (base64) or else ``url``; None if neither is given."""
        if "image" in params:
            return decode_base64_image(params["image"])
        if "url" in params:
            return fetch_url_image(params["url"], self.url_timeout)
        return None

    def _add(self, gallery: Gallery, params: Params) -> Result:
        brief = _brief_param(params, required=gallery.brief_required) or ""
        tag1, tag2 = _tag_values(gallery, params)
        image = self._image_param(params)
        if image is None:
            raise error_for(216101, "not enough param: image or url")
        sign = self._galleries.add(gallery.name, image, brief, tag1 or 0, tag2 or 0)
        return {"cont_sign": sign}

    def _search(self, gallery: Gallery, params: Params) -> Result:
        tags = _tag_filter(gallery, params)
        pn = _int_param(params, "pn", PN_MIN, PN_MAX) or 0
        rn = _int_param(params, "rn", RN_MIN, RN_MAX) or DEFAULT_SEARCH_RN
        image = self._image_param(params)
        if image is None:
            raise error_for(216101, "not enough param: image or url")
        page = self._galleries.search(gallery.name, image, tags, pn, rn)
        return {
            "result_num": len(page.hits),
            "result": [
                {"cont_sign": hit.cont_sign, "score": hit.score, "brief": hit.brief}
                for hit in page.hits
            ],
            "has_more": page.has_more,
        }

    def _target(self, gallery: Gallery, params: Params) -> str | None:
        """The cont_sign an update names by image or url; None to use ``cont_sign``."""
        image = self._image_param(params)
        return None if image is None else self._galleries.resolve_image(gallery.name, image)

    def _update(self, gallery: Gallery, params: Params) -> Result:
        brief = _brief_param(params, required=False)
        tag1, tag2 = _tag_values(gallery, params)
        if brief is None and tag1 is None and tag2 is None:
            raise error_for(216101, "not enough param: brief or tags to update")
        if "image" not in params and "url" not in params:
            sign_value = params.get("cont_sign")
            if not sign_value:
                raise error_for(216101, "not enough param: image, url or cont_sign")
            if ";" in sign_value:
                raise _invalid("update takes one cont_sign")
            sign = _cont_sign_param(sign_value)
        else:
            resolved = self._target(gallery, params)
            assert resolved is not None
            sign = resolved
        if gallery.tag_style == "tags" and tag1 is not None:
            # tags replace both slots: "tags=5" leaves one tag
            tag2 = tag2 or 0
        self._galleries.update(gallery.name, sign, MetaChange(brief, tag1, tag2))
        return {}

    def _delete(self, gallery: Gallery, params: Params) -> Result:
        if "image" in params or "url" in params:
            resolved = self._target(gallery, params)
            assert resolved is not None
            self._galleries.delete(gallery.name, [resolved], strict=True)
            return {}
        value = params.get("cont_sign")
        if not value:
            raise error_for(216101, "not enough param: image, url or cont_sign")
        signs = [piece for piece in value.split(";") if piece]
        if not signs:
            raise _invalid("cont_sign")
        if len(signs) > MAX_DELETE_BATCH:
            raise _invalid(f"at most {MAX_DELETE_BATCH} cont_signs per delete")
        for sign in signs:
            _cont_sign_param(sign)
        self._galleries.delete(gallery.name, signs, strict=len(signs) == 1)
        return {}
