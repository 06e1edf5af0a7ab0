"""How answers become typed results or the error classes of syncd.errors."""

from __future__ import annotations

import json

import pytest

from syncd.api.baidu.codes import ERROR_TABLE
from syncd.api.baidu.results import decode_answer, parse_add, parse_bool, parse_search
from syncd.api.port import SearchHit
from syncd.errors import ApiError, BadRequestError, TransientError

# the search answer of the API document, has_more as a string
DOC_SEARCH_ANSWER = b"""{
    "result_num": 1,
    "result": [
        {
            "score": 0.97976700290421,
            "brief": "./data/jay1.jpg",
            "cont_sign": "475124309,1080176642"
        }
    ],
\t"has_more": "false",
    "log_id": 1968648150
}"""


@pytest.mark.parametrize("code", sorted(ERROR_TABLE))
def test_every_error_code_of_the_document_raises_its_class(code: int) -> None:
    body = json.dumps({"error_code": code, "error_msg": "msg", "log_id": 42}).encode()
    with pytest.raises(ApiError) as info:
        decode_answer(200, body)
    assert type(info.value) is ERROR_TABLE[code].cls
    assert (info.value.code, info.value.message, info.value.log_id) == (code, "msg", 42)


def test_error_code_as_a_string_and_log_id_as_a_string_are_understood() -> None:
    with pytest.raises(ApiError) as info:
        decode_answer(200, b'{"error_code": "216681", "error_msg": "item exist", "log_id": "77"}')
    assert (info.value.code, info.value.log_id, info.value.kind) == (216681, 77, "item_exists")


@pytest.mark.parametrize(
    "status,content",
    [
        (502, b"<html>Bad Gateway</html>"),
        (503, b""),
        (500, b'{"x": 1}'),
        (200, b"not json"),
        (200, b"[1, 2]"),
        (200, b'{"error_code": "abc"}'),
    ],
)
def test_server_trouble_and_unreadable_answers_are_transient(status: int, content: bytes) -> None:
    with pytest.raises(TransientError) as info:
        decode_answer(status, content)
    assert info.value.code == status


def test_http_client_error_without_error_body_is_a_bad_request() -> None:
    with pytest.raises(BadRequestError) as info:
        decode_answer(404, b"Not Found")
    assert info.value.code == 404


def test_secrets_in_an_answers_message_are_blanked() -> None:
    body = b'{"error_code": 110, "error_msg": "token tok-123 invalid"}'
    with pytest.raises(ApiError) as info:
        decode_answer(200, body, ("tok-123",))
    assert "tok-123" not in str(info.value) and "***" in info.value.message


def test_documents_search_example_parses_with_has_more_as_a_string() -> None:
    page = parse_search(decode_answer(200, DOC_SEARCH_ANSWER))
    assert page.hits == [SearchHit("475124309,1080176642", 0.97976700290421, "./data/jay1.jpg")]
    assert (page.result_num, page.has_more, page.log_id) == (1, False, 1968648150)


@pytest.mark.parametrize(
    "value,expected",
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("TRUE", True),
        (" false ", False),
        (1, True),
        (0, False),
    ],
)
def test_has_more_accepts_json_bools_and_their_strings(value: object, expected: bool) -> None:
    assert parse_bool(value) is expected
    body = {"result_num": 0, "result": [], "has_more": value, "log_id": 1}
    assert parse_search(body).has_more is expected


@pytest.mark.parametrize("value", ["yes", "", None, 2, 0.5])
def test_has_more_of_another_kind_is_a_malformed_answer(value: object) -> None:
    with pytest.raises(TransientError):
        parse_search({"result": [], "has_more": value})


@pytest.mark.parametrize(
    "body",
    [
        {"result": "x"},
        {"result": [{"score": 0.5}]},
        {"result": [{"cont_sign": "1,2", "score": "high"}]},
    ],
)
def test_malformed_search_answers_are_transient(body: dict[str, object]) -> None:
    with pytest.raises(TransientError):
        parse_search(body)


def test_add_answer_without_cont_sign_is_transient() -> None:
    with pytest.raises(TransientError):
        parse_add({"log_id": 5})
    assert parse_add({"log_id": 5, "cont_sign": "1,2"}).cont_sign == "1,2"
