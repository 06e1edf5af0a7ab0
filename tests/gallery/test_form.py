"""The gallery reads a form body as werkzeug does, base64 images through a faster path."""

from __future__ import annotations

import base64
import io
from urllib.parse import quote

from hypothesis import example, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from syncd.gallery.form import form_params, parse_form

#: characters that make up form bodies, escapes and their near misses included
_PIECES = st.sampled_from(
    ["a", "Z", "0", "+", "/", "=", "&", "%", "%2B", "%2b", "%2F", "%3D", "%3d", "%25", "%2", "%zz",
     "%C3%A9", "%FF", "é", " ", ";", "image", "brief", "\x00"]
)  # fmt: skip


_FORM = "application/x-www-form-urlencoded"


def request_of(body: bytes) -> Request:
    """A POST request carrying ``body`` as a urlencoded form."""
    return Request(EnvironBuilder(method="POST", data=body, content_type=_FORM).get_environ())


def werkzeug_form(body: bytes) -> dict[str, str]:
    """What ``request.form`` gives for ``body``: the first value of each name."""
    request = request_of(body)
    return {key: request.form[key] for key in request.form}


def ours(body: bytes) -> dict[str, str]:
    return form_params(request_of(body))


@settings(max_examples=400, derandomize=True)
@given(st.lists(_PIECES, max_size=30).map("".join))
@example("image=ab%2Bc%2F%3D%3D&brief=x&image=second")
@example("a=%2B%2Bx+y&&=v&novalue&b=%252B")
@example("k=%2B%zz")
def test_reads_every_body_as_werkzeug_does(text: str) -> None:
    body = text.encode()
    assert ours(body) == werkzeug_form(body)


def test_a_base64_image_comes_back_byte_for_byte() -> None:
    raw = bytes(range(256)) * 64  # every base64 character, '+' and '/' among them
    text = base64.b64encode(raw[:-1]).decode()  # one byte short: padded with '='
    body = f"image={quote(text, safe='')}&brief={quote('a/b c+d', safe='')}".encode()
    fields = ours(body)
    assert base64.b64decode(fields["image"]) == raw[:-1]
    assert fields == werkzeug_form(body)
    assert fields["brief"] == "a/b c+d"


def test_a_body_that_is_not_utf8_has_no_fields_as_with_werkzeug() -> None:
    body = b"image=\xff\xfe&brief=x"
    assert ours(body) == werkzeug_form(body) == {}


def test_other_content_types_are_left_to_werkzeug() -> None:
    files = {"image": (io.BytesIO(b"x"), "a.jpg"), "brief": "b"}
    request = Request(EnvironBuilder(method="POST", data=files).get_environ())
    assert form_params(request) == {"brief": "b"}


def test_parse_form_keeps_the_first_of_repeated_names() -> None:
    assert parse_form(b"a=1&a=2&b=%2F") == {"a": "1", "b": "/"}
