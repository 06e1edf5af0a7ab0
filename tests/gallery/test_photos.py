"""The local gallery with real photographs at a phone's 12 megapixels (devkit.photos).

The gallery decodes a large JPEG at a reduced scale; what it keeps must still find each
photograph by itself, by a crop of it and across the sizes syncd sends (a photo over the
byte limit is stored at half its sides, and searched with the full-size picture), and
unrelated photographs must find nothing. Over HTTP, as syncd and users call it.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from devkit.photos import NO_PHOTOS, camera_exif, phone_jpeg, phone_pixels, photo_sources
from syncd.scan.prepare import MAX_IMAGE_BYTES, prepare_image

from .helpers import ApiClient, b64

pytestmark = pytest.mark.skipif(not photo_sources(), reason=NO_PHOTOS)

#: photographs added, and the ones never added
ALBUM = 8


@cache
def as_sent(index: int) -> bytes:
    """Photograph ``index`` as a phone's JPEG within the byte limit (quality 90)."""
    out = io.BytesIO()
    phone_pixels(photo_sources()[index], seed=index).save(
        out, "JPEG", quality=90, exif=camera_exif()
    )
    assert out.tell() <= MAX_IMAGE_BYTES
    return out.getvalue()


@cache
def partial_copy(index: int) -> bytes:
    """A crop of photograph ``index``: 75 % of each side off centre, rescaled to 80 %,
    JPEG quality 75 (as a user's screenshot or edit of it)."""
    picture = phone_pixels(photo_sources()[index], seed=index)
    rng = np.random.default_rng(index)
    width, height = picture.size
    cw, ch = width * 3 // 4, height * 3 // 4
    left, top = int(rng.integers(0, width - cw)), int(rng.integers(0, height - ch))
    part = picture.crop((left, top, left + cw, top + ch))
    part = part.resize((cw * 4 // 5, ch * 4 // 5), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    part.save(out, "JPEG", quality=75)
    return out.getvalue()


def without_exif(jpeg: bytes) -> bytes:
    """The JPEG with its APP1 (EXIF) segment cut out: other bytes, the same pixels."""
    assert jpeg[:2] == b"\xff\xd8"
    pos = 2
    while jpeg[pos + 1] != 0xE1:
        pos += 2 + int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
    end = pos + 2 + int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
    return jpeg[:pos] + jpeg[end:]


def first_hit(client: ApiClient, gallery: str, image: bytes) -> tuple[str, float] | None:
    """The first hit of a search with ``image``: (cont_sign, score), or None."""
    result = client.ok(gallery, "search", image=b64(image))["result"]
    return (result[0]["cont_sign"], result[0]["score"]) if result else None


def test_phone_photos_find_themselves_and_their_crops_and_nothing_else(
    token_client: ApiClient,
) -> None:
    signs = [
        token_client.ok("same_hq", "add", image=b64(as_sent(i)), brief=str(i))["cont_sign"]
        for i in range(ALBUM)
    ]
    assert len(set(signs)) == ALBUM
    for index, sign in enumerate(signs):
        assert first_hit(token_client, "same_hq", as_sent(index)) == (sign, 1.0)
    found = [first_hit(token_client, "same_hq", partial_copy(i)) for i in range(ALBUM)]
    assert [hit and hit[0] for hit in found] == signs
    for index in range(ALBUM, len(photo_sources())):
        assert first_hit(token_client, "same_hq", as_sent(index)) is None, index


def test_a_photo_stored_at_half_size_is_found_by_the_full_size_photo_and_a_crop(
    token_client: ApiClient, tmp_path: Path
) -> None:
    index = 3
    path = tmp_path / "IMG_0001.JPG"
    path.write_bytes(phone_jpeg(photo_sources()[index], seed=index))
    prepared = prepare_image(path)  # over the limit: what syncd sends is half the sides
    assert prepared.converted and prepared.width * 2 == Image.open(path).width
    for other in range(ALBUM):  # the rest of the album beside it
        if other != index:
            token_client.ok("same_hq", "add", image=b64(as_sent(other)), brief=str(other))
            token_client.ok("similar", "add", image=b64(as_sent(other)), brief=str(other))
    sign = token_client.ok("same_hq", "add", image=b64(prepared.data), brief="it")["cont_sign"]
    similar = token_client.ok("similar", "add", image=b64(prepared.data), brief="it")
    full = first_hit(token_client, "same_hq", as_sent(index))
    assert full is not None and full[0] == sign and full[1] >= 0.9
    crop = first_hit(token_client, "same_hq", partial_copy(index))
    assert crop is not None and crop[0] == sign
    assert first_hit(token_client, "similar", as_sent(index)) is not None
    result = token_client.ok("similar", "search", image=b64(as_sent(index)))["result"]
    assert result[0]["cont_sign"] == similar["cont_sign"]


def test_the_same_photo_with_other_metadata_is_the_same_item(token_client: ApiClient) -> None:
    sign = token_client.ok("same_hq", "add", image=b64(as_sent(0)), brief="a")["cont_sign"]
    bare = without_exif(as_sent(0))
    assert bare != as_sent(0)
    body = token_client.call("same_hq", "add", image=b64(bare), brief="b")
    assert (body.get("error_code"), body.get("cont_sign")) == (216681, sign)
