"""Every validation of the API document answers its error code (HTTP 200, JSON)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import pytest
from PIL import Image

from syncd.api.baidu.galleries import GALLERY_NAMES

from .helpers import ApiClient, b64, tag_params

MakeImage = Callable[..., bytes]


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(out, "PNG")
    return out.getvalue()


def _add_params(gallery: str, image: str, **extra: str) -> dict[str, str]:
    return {"image": image, "brief": "b", **extra}


@pytest.mark.parametrize("gallery", GALLERY_NAMES)
@pytest.mark.parametrize("op", ["add", "search", "update", "delete"])
def test_empty_image_answers_216200(token_client: ApiClient, gallery: str, op: str) -> None:
    params = {"image": "", "brief": "b"}
    assert token_client.error(gallery, op, **params) == 216200


@pytest.mark.parametrize("op", ["add", "search"])
def test_empty_url_answers_282114(token_client: ApiClient, op: str) -> None:
    assert token_client.error("similar", op, url="", brief="b") == 282114


def test_url_over_1024_bytes_answers_282114(token_client: ApiClient) -> None:
    url = "http://127.0.0.1/" + "a" * 1010
    assert token_client.error("similar", "search", url=url) == 282114


@pytest.mark.parametrize("fmt", ["WEBP", "TIFF"])
def test_formats_outside_jpeg_png_bmp_gif_answer_216201(
    token_client: ApiClient, make_image: MakeImage, fmt: str
) -> None:
    image = b64(make_image(1, fmt=fmt))
    assert token_client.error("similar", "add", **_add_params("similar", image)) == 216201


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "GIF"])
def test_jpeg_png_bmp_and_gif_are_accepted(
    token_client: ApiClient, make_image: MakeImage, fmt: str
) -> None:
    image = b64(make_image(2, fmt=fmt))
    assert token_client.ok("similar", "add", **_add_params("similar", image))["cont_sign"]


def test_bytes_that_are_no_image_answer_216201(token_client: ApiClient) -> None:
    image = b64(b"this is plain text, not an image at all")
    assert token_client.error("same_hq", "add", **_add_params("same_hq", image)) == 216201


def test_truncated_image_answers_216201(token_client: ApiClient, make_image: MakeImage) -> None:
    data = make_image(3, size=(256, 256), fmt="PNG")
    image = b64(data[: len(data) // 2])
    assert token_client.error("same_hq", "add", **_add_params("same_hq", image)) == 216201


def test_image_with_a_side_under_15_px_answers_216202(token_client: ApiClient) -> None:
    assert token_client.error("same_hq", "add", **_add_params("same_hq", b64(_png(14, 300)))) == (
        216202
    )
    assert token_client.ok("same_hq", "add", **_add_params("same_hq", b64(_png(15, 300))))


def test_image_with_a_side_over_4096_px_answers_216202(token_client: ApiClient) -> None:
    assert token_client.error("similar", "search", image=b64(_png(4097, 20))) == 216202
    assert token_client.ok("similar", "search", image=b64(_png(4096, 20)))


def _bilevel_png(width: int, height: int) -> bytes:
    """A 1-bit PNG of ``width`` x ``height`` white-on-nothing pixels, built row by row so
    that the test never holds its pixels (a 30000 x 30000 one is about 100 KB)."""
    pack = zlib.compressobj(9)
    row = b"\0" + b"\0" * ((width + 7) // 8)
    body = b"".join(pack.compress(row) for _ in range(height)) + pack.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def test_an_image_with_more_pixels_than_pillow_opens_answers_216202(
    token_client: ApiClient,
) -> None:
    # Pillow refuses 900 megapixels as a decompression bomb on open: a size error, not a
    # format error
    image = b64(_bilevel_png(30000, 30000))
    assert token_client.error("same_hq", "add", image=image, brief="{}") == 216202
    assert token_client.error("similar", "search", image=image) == 216202


def test_base64_over_4_mib_answers_216202(token_client: ApiClient) -> None:
    image = "A" * (4 * 1024 * 1024 + 4)
    assert token_client.error("similar", "search", image=image) == 216202


@pytest.mark.parametrize("image", ["not base64!", "QUJ", "data:image/jpg;base64,/9j/4AAQ", "AAA"])
def test_bad_base64_answers_216203(token_client: ApiClient, image: str) -> None:
    assert token_client.error("similar", "search", image=image) == 216203


@pytest.mark.parametrize("gallery", GALLERY_NAMES)
@pytest.mark.parametrize("op", ["add", "search"])
def test_no_image_and_no_url_answers_216101(token_client: ApiClient, gallery: str, op: str) -> None:
    assert token_client.error(gallery, op, brief="b") == 216101


@pytest.mark.parametrize("op", ["update", "delete"])
def test_no_image_url_or_cont_sign_answers_216101(token_client: ApiClient, op: str) -> None:
    assert token_client.error("similar", op, brief="b") == 216101


def test_update_with_nothing_to_change_answers_216101(token_client: ApiClient) -> None:
    assert token_client.error("similar", "update", cont_sign="1,2") == 216101


def test_same_hq_add_without_brief_answers_282003(
    token_client: ApiClient, make_image: MakeImage
) -> None:
    assert token_client.error("same_hq", "add", image=b64(make_image(4))) == 282003
    assert token_client.error("same_hq", "add", image=b64(make_image(4)), brief="") == 282003


@pytest.mark.parametrize("gallery", ["similar", "product"])
def test_brief_is_optional_outside_same_hq(
    token_client: ApiClient, gallery: str, make_image: MakeImage
) -> None:
    assert token_client.ok(gallery, "add", image=b64(make_image(5)))["cont_sign"]


@pytest.mark.parametrize("op", ["add", "update"])
def test_brief_over_256_bytes_answers_216103(
    token_client: ApiClient, make_image: MakeImage, op: str
) -> None:
    sign = token_client.ok("similar", "add", image=b64(make_image(6)), brief="x")["cont_sign"]
    brief = "é" * 129  # 258 bytes in UTF-8, 129 characters
    params = (
        {"brief": brief, "image": b64(make_image(7))}
        if op == "add"
        else {
            "brief": brief,
            "cont_sign": sign,
        }
    )
    assert token_client.error("similar", op, **params) == 216103


def test_brief_of_exactly_256_bytes_is_accepted(
    token_client: ApiClient, make_image: MakeImage
) -> None:
    assert token_client.ok("same_hq", "add", image=b64(make_image(8)), brief="é" * 128)


@pytest.mark.parametrize("gallery", ["same_hq", "similar"])
@pytest.mark.parametrize("tags", ["0", "65536", "1,2,3", "a", "1;2", "-1", "1,", " 1", "1.5"])
@pytest.mark.parametrize("op", ["add", "search", "update"])
def test_tags_out_of_range_or_malformed_answer_216100(
    token_client: ApiClient, make_image: MakeImage, gallery: str, tags: str, op: str
) -> None:
    params = {"tags": tags, "brief": "b"}
    if op == "update":
        params["cont_sign"] = "1,2"
    else:
        params["image"] = b64(make_image(9))
    assert token_client.error(gallery, op, **params) == 216100


@pytest.mark.parametrize("field", ["class_id1", "class_id2"])
@pytest.mark.parametrize("value", ["0", "65536", "x", "-3"])
@pytest.mark.parametrize("op", ["add", "search", "update"])
def test_class_ids_out_of_range_answer_216100(
    token_client: ApiClient, make_image: MakeImage, field: str, value: str, op: str
) -> None:
    params = {field: value, "brief": "b"}
    if op == "update":
        params["cont_sign"] = "1,2"
    else:
        params["image"] = b64(make_image(10))
    assert token_client.error("product", op, **params) == 216100


@pytest.mark.parametrize(
    "params",
    [{"pn": "-1"}, {"pn": "1001"}, {"pn": "x"}, {"rn": "0"}, {"rn": "1001"}, {"rn": "1e3"}],
)
def test_paging_out_of_range_answers_216100(
    token_client: ApiClient, make_image: MakeImage, params: dict[str, str]
) -> None:
    assert token_client.error("similar", "search", image=b64(make_image(11)), **params) == 216100


@pytest.mark.parametrize("gallery", GALLERY_NAMES)
@pytest.mark.parametrize("logic", ["2", "and", "-1"])
def test_tag_logic_other_than_0_or_1_answers_216100(
    token_client: ApiClient, make_image: MakeImage, gallery: str, logic: str
) -> None:
    params = {"image": b64(make_image(12)), "tag_logic": logic, **tag_params(gallery, 5)}
    assert token_client.error(gallery, "search", **params) == 216100


@pytest.mark.parametrize("sign", ["abc", "1", "1,2,3", "1,-2", ",", "1;2"])
@pytest.mark.parametrize("op", ["update", "delete"])
def test_malformed_cont_sign_answers_216100(token_client: ApiClient, sign: str, op: str) -> None:
    assert token_client.error("similar", op, cont_sign=sign, brief="b") == 216100


def test_delete_of_more_than_1000_cont_signs_answers_216100(token_client: ApiClient) -> None:
    signs = ";".join(f"{i},{i}" for i in range(1001))
    assert token_client.error("similar", "delete", cont_sign=signs) == 216100
    token_client.ok("similar", "delete", cont_sign=";".join(f"{i},{i}" for i in range(1000)))


@pytest.mark.parametrize("op", ["update", "delete"])
def test_unknown_single_cont_sign_answers_216680(token_client: ApiClient, op: str) -> None:
    assert token_client.error("product", op, cont_sign="123,456", brief="b") == 216680


@pytest.mark.parametrize("op", ["update", "delete"])
def test_image_not_in_the_gallery_answers_216680(
    token_client: ApiClient, make_image: MakeImage, op: str
) -> None:
    token_client.ok("same_hq", "add", image=b64(make_image(13)), brief="b")
    assert token_client.error("same_hq", op, image=b64(make_image(14)), brief="c") == 216680


def test_errors_are_json_with_code_message_and_log_id(token_client: ApiClient) -> None:
    body = token_client.call("similar", "search", image="")
    assert set(body) == {"error_code", "error_msg", "log_id"}
    assert body["error_msg"] == "empty image"
    assert isinstance(body["log_id"], int)


def test_image_takes_priority_over_url(token_client: ApiClient, make_image: MakeImage) -> None:
    # a broken url is not even fetched when an image is given
    body = token_client.ok("similar", "add", image=b64(make_image(15)), url="ftp://nowhere")
    assert body["cont_sign"]
