"""What the client refuses before a call, and the form bodies it builds."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.api.baidu.galleries import GALLERIES
from syncd.api.baidu.limits import MAX_IMAGE_B64_BYTES
from syncd.api.baidu.params import (
    CallParams,
    add_params,
    base64_length,
    delete_params,
    encode_form,
    search_params,
    update_params,
)
from syncd.errors import ValidationError

SAME, SIMILAR, PRODUCT = GALLERIES["same_hq"], GALLERIES["similar"], GALLERIES["product"]
IMG = b"\xff\xd8\xff\xe0 not checked here"


def _form(params: CallParams) -> dict[str, list[str]]:
    return parse_qs(
        encode_form(params).decode("ascii"), keep_blank_values=True, strict_parsing=True
    )


@given(st.binary(max_size=2000))
def test_image_body_decodes_back_to_the_same_bytes(image: bytes) -> None:
    params = CallParams("add", (("brief", "a b&c=d+é/"),), image if image else b"x")
    form = _form(params)
    assert base64.b64decode(form["image"][0]) == (image if image else b"x")
    assert form["brief"] == ["a b&c=d+é/"]


@given(st.integers(min_value=0, max_value=5000))
def test_base64_length_is_computed_without_encoding(n: int) -> None:
    assert base64_length(n) == len(base64.b64encode(bytes(n)))


def test_form_body_matches_a_general_urlencode() -> None:
    image = bytes(range(256)) * 3
    params = add_params(
        SAME, image=image, url=None, brief='{"lib":"a","path":"x y.jpg"}', tags=(100, 11)
    )
    expected = urlencode(
        [
            ("image", base64.b64encode(image).decode()),
            ("brief", '{"lib":"a","path":"x y.jpg"}'),
            ("tags", "100,11"),
        ]
    )
    assert parse_qs(encode_form(params).decode()) == parse_qs(expected)


def test_product_tags_become_class_ids() -> None:
    assert _form(add_params(PRODUCT, image=IMG, url=None, brief=None, tags=(7, 9)))[
        "class_id1"
    ] == ["7"]
    form = _form(search_params(PRODUCT, image=IMG, url=None, tags=(7, 9), tag_logic=1, pn=0, rn=5))
    assert (form["class_id1"], form["class_id2"], form["tag_logic"]) == (["7"], ["9"], ["1"])
    assert "tags" not in form
    one = _form(
        update_params(PRODUCT, image=None, url=None, cont_sign="1,2", brief=None, tags=(3,))
    )
    assert one["class_id1"] == ["3"] and "class_id2" not in one


def test_tags_are_sent_comma_separated_on_same_hq_and_similar() -> None:
    for gallery in (SAME, SIMILAR):
        form = _form(add_params(gallery, image=IMG, url=None, brief="b", tags=(100, 11)))
        assert form["tags"] == ["100,11"]


def test_delete_batch_is_joined_with_semicolons() -> None:
    form = _form(delete_params(SAME, image=None, url=None, cont_signs=["1,2", "3,4", "5,6"]))
    assert form == {"cont_sign": ["1,2;3,4;5,6"]}


def test_search_page_fields_are_sent_only_when_given() -> None:
    assert set(
        _form(
            search_params(SIMILAR, image=IMG, url=None, tags=(), tag_logic=None, pn=None, rn=None)
        )
    ) == {"image"}
    form = _form(
        search_params(
            SIMILAR, image=None, url="http://x/y.jpg", tags=(5,), tag_logic=0, pn=10, rn=20
        )
    )
    assert form == {
        "url": ["http://x/y.jpg"],
        "tags": ["5"],
        "tag_logic": ["0"],
        "pn": ["10"],
        "rn": ["20"],
    }


REFUSALS = [
    (
        "brief over 256 bytes",
        lambda: add_params(SAME, image=IMG, url=None, brief="é" * 129, tags=()),
    ),
    (
        "same_hq add without brief",
        lambda: add_params(SAME, image=IMG, url=None, brief=None, tags=()),
    ),
    (
        "same_hq add with empty brief",
        lambda: add_params(SAME, image=IMG, url=None, brief="", tags=()),
    ),
    ("three tags", lambda: add_params(SIMILAR, image=IMG, url=None, brief=None, tags=(1, 2, 3))),
    ("tag 0", lambda: add_params(SIMILAR, image=IMG, url=None, brief=None, tags=(0,))),
    ("tag 65536", lambda: add_params(SIMILAR, image=IMG, url=None, brief=None, tags=(65536,))),
    ("tag True", lambda: add_params(SIMILAR, image=IMG, url=None, brief=None, tags=(True,))),
    ("tag string", lambda: add_params(SIMILAR, image=IMG, url=None, brief=None, tags="12")),  # type: ignore[arg-type]
    ("class id 0", lambda: add_params(PRODUCT, image=IMG, url=None, brief=None, tags=(0,))),
    (
        "class id 70000",
        lambda: update_params(
            PRODUCT, image=None, url=None, cont_sign="1,2", brief=None, tags=(1, 70000)
        ),
    ),
    ("no image input", lambda: add_params(SIMILAR, image=None, url=None, brief=None, tags=())),
    (
        "image and url",
        lambda: search_params(
            SIMILAR, image=IMG, url="http://x/a.jpg", tags=(), tag_logic=None, pn=None, rn=None
        ),
    ),
    ("empty image", lambda: add_params(SIMILAR, image=b"", url=None, brief=None, tags=())),
    (
        "url too long",
        lambda: add_params(SIMILAR, image=None, url="http://x/" + "a" * 1020, brief=None, tags=()),
    ),
    ("url empty", lambda: add_params(SIMILAR, image=None, url="", brief=None, tags=())),
    (
        "url not http",
        lambda: add_params(SIMILAR, image=None, url="file:///etc/passwd", brief=None, tags=()),
    ),
    (
        "tag_logic 2",
        lambda: search_params(SIMILAR, image=IMG, url=None, tags=(), tag_logic=2, pn=None, rn=None),
    ),
    (
        "pn -1",
        lambda: search_params(
            SIMILAR, image=IMG, url=None, tags=(), tag_logic=None, pn=-1, rn=None
        ),
    ),
    (
        "pn 1001",
        lambda: search_params(
            SIMILAR, image=IMG, url=None, tags=(), tag_logic=None, pn=1001, rn=None
        ),
    ),
    (
        "rn 0",
        lambda: search_params(SIMILAR, image=IMG, url=None, tags=(), tag_logic=None, pn=None, rn=0),
    ),
    (
        "rn 1001",
        lambda: search_params(
            SIMILAR, image=IMG, url=None, tags=(), tag_logic=None, pn=None, rn=1001
        ),
    ),
    (
        "update without change",
        lambda: update_params(SAME, image=None, url=None, cont_sign="1,2", brief=None, tags=None),
    ),
    (
        "update two sources",
        lambda: update_params(SAME, image=IMG, url=None, cont_sign="1,2", brief="b", tags=None),
    ),
    (
        "update cont_sign batch",
        lambda: update_params(
            SAME, image=None, url=None, cont_sign="1,2;3,4", brief="b", tags=None
        ),
    ),
    ("delete empty batch", lambda: delete_params(SAME, image=None, url=None, cont_signs=[])),
    (
        "delete 1001",
        lambda: delete_params(
            SAME, image=None, url=None, cont_signs=[f"{i},1" for i in range(1001)]
        ),
    ),
    ("delete one string", lambda: delete_params(SAME, image=None, url=None, cont_signs="1,2")),
    (
        "delete blank sign",
        lambda: delete_params(SAME, image=None, url=None, cont_signs=["1,2", " "]),
    ),
    ("delete nothing", lambda: delete_params(SAME, image=None, url=None, cont_signs=None)),
]


@pytest.mark.parametrize("why,build", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_bad_input_is_refused_with_a_one_line_reason(why: str, build: object) -> None:
    with pytest.raises(ValidationError) as info:
        build()  # type: ignore[operator]
    text = str(info.value)
    assert text and "\n" not in text


def test_limits_themselves_are_accepted() -> None:
    add_params(SAME, image=IMG, url=None, brief="é" * 128, tags=(1, 65535))
    add_params(SIMILAR, image=None, url="http://x/" + "a" * 1015, brief=None, tags=())
    search_params(SIMILAR, image=IMG, url=None, tags=(), tag_logic=1, pn=1000, rn=1000)
    delete_params(SAME, image=None, url=None, cont_signs=[f"{i},1" for i in range(1000)])


def test_image_is_refused_when_its_base64_would_pass_4_mib() -> None:
    largest = MAX_IMAGE_B64_BYTES // 4 * 3
    add_params(SIMILAR, image=bytes(largest), url=None, brief=None, tags=())
    with pytest.raises(ValidationError, match="base64"):
        add_params(SIMILAR, image=bytes(largest + 1), url=None, brief=None, tags=())
