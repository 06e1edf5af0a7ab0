"""Random and malformed requests never crash the server or leak a traceback page."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from devkit.imagegen import make_image
from syncd.api.baidu.galleries import GALLERIES, TOKEN_PATH
from syncd.gallery.server import GalleryServer

from .helpers import API_KEY, SECRET_KEY, ApiClient, b64, bce_timestamp, get_token

API_PATHS = [g.path(op) for g in GALLERIES.values() for op in ("add", "search", "update", "delete")]
OTHER_PATHS = [TOKEN_PATH, "/_syncd/health", "/_syncd/calls", "/_syncd/items", "/", "/rest/2.0/"]
PARAM_NAMES = [
    "image",
    "url",
    "brief",
    "tags",
    "tag_logic",
    "pn",
    "rn",
    "cont_sign",
    "class_id1",
    "class_id2",
    "grant_type",
    "client_id",
    "client_secret",
    "gallery",
    "access_token",
]


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def _gif_header(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def _bmp_header(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 3 * width, 0, 0, 54) + info


def _jpeg_header(width: int, height: int) -> bytes:
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


dims = st.integers(min_value=0, max_value=65535)
crafted_headers = st.builds(
    lambda make, w, h: make(w, h),
    st.sampled_from([_png_header, _gif_header, _bmp_header, _jpeg_header]),
    st.integers(0, 65535),
    dims,
)
real_images = st.builds(
    lambda seed, fmt, w, h: make_image(seed, (w, h), fmt),
    st.integers(0, 30),
    st.sampled_from(["JPEG", "PNG", "BMP", "GIF"]),
    st.integers(1, 40),
    st.integers(1, 40),
)
broken_images = st.builds(
    lambda data, cut, flip: bytes(b ^ 0xFF if i == flip else b for i, b in enumerate(data[:cut])),
    real_images,
    st.integers(0, 2000),
    st.integers(0, 2000),
)
image_bytes = st.one_of(crafted_headers, real_images, broken_images, st.binary(max_size=200))
image_values = st.one_of(
    image_bytes.map(b64),
    st.text(max_size=60),
    image_bytes.map(lambda d: "data:image/jpeg;base64," + b64(d)),
    image_bytes.map(lambda d: base64.b64encode(d).decode()[:-1]),
)
texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["0", "1", "1,2", "65536", "-1", "1,2,3", "1,2;3,4", "", "9" * 30]),
    st.integers(-(2**70), 2**70).map(str),
)
form_values = st.dictionaries(
    st.sampled_from(PARAM_NAMES) | st.text(max_size=10),
    texts,
    max_size=6,
)
ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
authorizations = st.one_of(
    st.none(),
    ascii_text,
    st.builds(
        lambda ak, ts, exp, signed, sig: f"bce-auth-v1/{ak}/{ts}/{exp}/{signed}/{sig}",
        st.sampled_from(["test-ak", "", "x"]),
        st.sampled_from([bce_timestamp(), "2000-01-01T00:00:00Z", "garbage", ""]),
        st.sampled_from(["1800", "0", "-5", "x", "99999999999999999999"]),
        st.sampled_from(["host", "host;x-bce-date", "", ";;", "authorization"]),
        ascii_text,
    ),
)
# mostly forms with an image (7 in 10), else forms without one or raw bytes
bodies = st.tuples(
    st.integers(0, 9),
    st.builds(lambda form, image: {**form, "image": image}, form_values, image_values),
    form_values,
    st.binary(max_size=300),
).map(lambda t: t[1] if t[0] < 7 else t[2] if t[0] < 9 else t[3])
content_types = st.sampled_from(
    [
        None,
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=gbk",
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
        "application/json",
        "text/plain",
    ]
)
# mostly POST (17 in 20), as the API wants
methods = st.tuples(
    st.integers(0, 19), st.sampled_from(["GET", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])
).map(lambda t: "POST" if t[0] < 17 else t[1])
random_paths = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=30
).map(lambda p: "/" + p.lstrip("/"))
# mostly the API's own paths (7 in 10), so the fuzzing reaches parameters and images
paths = st.tuples(
    st.integers(0, 9), st.sampled_from(API_PATHS), st.sampled_from(OTHER_PATHS), random_paths
).map(lambda t: t[1] if t[0] < 7 else t[2] if t[0] < 8 else t[3])


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GalleryServer]:
    """One server for all the fuzzing of this module, checked afterwards."""
    server = GalleryServer(
        tmp_path_factory.mktemp("fuzz") / "gallery", api_key=API_KEY, secret_key=SECRET_KEY
    )
    with server:
        yield server


@pytest.fixture(scope="module")
def token(fuzz_server: GalleryServer) -> str:
    return get_token(fuzz_server)


def _check_answer(answer: requests.Response, method: str) -> None:
    if method == "HEAD":
        assert answer.status_code in (200, 400, 401)
        return
    assert answer.status_code in (200, 400, 401), answer.text[:200]
    body: Any = answer.json()
    assert isinstance(body, dict)
    event(f"answer {body.get('error_code', 'ok')}")
    if "error_code" in body:
        assert body["error_code"] != 282000, "an unexpected exception reached the top"
        assert isinstance(body["error_msg"], str)
    else:
        assert {"log_id", "access_token", "status", "calls", "items", "error"} & set(body), body


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    method=methods,
    path=paths,
    use_token=st.sampled_from(["valid", "valid", "valid", "invalid", "none"]),
    authorization=authorizations,
    body=bodies,
    content_type=content_types,
    query=st.dictionaries(st.sampled_from(PARAM_NAMES) | st.text(max_size=5), texts, max_size=3),
)
def test_random_requests_always_get_a_json_answer(
    fuzz_server: GalleryServer,
    token: str,
    method: str,
    path: str,
    use_token: str,
    authorization: str | None,
    body: dict[str, str] | bytes,
    content_type: str | None,
    query: dict[str, str],
) -> None:
    params = dict(query)
    if use_token == "valid":
        params["access_token"] = token
    elif use_token == "invalid":
        params["access_token"] = "24.bad"
    headers = {}
    if authorization is not None:
        headers["authorization"] = authorization
    if content_type is not None:
        headers["Content-Type"] = content_type
    try:
        answer = requests.request(
            method,
            fuzz_server.url + path,
            params=params,
            data=body,
            headers=headers,
            timeout=30,
        )
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader):
        return  # requests itself refused to send it
    _check_answer(answer, method)


def test_server_still_serves_after_the_fuzzing(fuzz_server: GalleryServer, token: str) -> None:
    # runs after the fuzz test above, on the same server
    health = requests.get(fuzz_server.url + "/_syncd/health", timeout=10)
    assert health.json()["status"] == "ok"
    client = ApiClient(fuzz_server, token=token)
    assert client.ok("similar", "add", image=b64(make_image(12345)))["cont_sign"]
