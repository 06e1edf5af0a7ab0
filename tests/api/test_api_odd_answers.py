"""Answers the local gallery never gives, played over loopback by a tiny server."""

from __future__ import annotations

import pytest

from syncd.api.baidu.client import ImageSearchClient
from syncd.config import AuthMode
from syncd.errors import BadRequestError, FatalSetupError, TransientError

from .tiny_server import answering, serving

# the search answer example of the API document: has_more is the string "false"
DOC_SEARCH_ANSWER = (
    b'{"result_num": 1, "result": [{"score": 0.97976700290421, '
    b'"brief": "./data/jay1.jpg", "cont_sign": "475124309,1080176642"}], '
    b'"has_more": "false", "log_id": 1968648150}'
)


@pytest.mark.parametrize("auth", ["token", "bce"])
def test_documents_search_example_is_read_with_has_more_as_a_string(auth: AuthMode) -> None:
    with (
        serving(answering(DOC_SEARCH_ANSWER)) as url,
        ImageSearchClient(url, api_key="ak", secret_key="sk", auth=auth) as client,
    ):
        page = client.search("same_hq", image=b"GIF89a")
    assert page.has_more is False and page.result_num == 1 and page.log_id == 1968648150
    assert [(h.cont_sign, h.brief) for h in page.hits] == [
        ("475124309,1080176642", "./data/jay1.jpg")
    ]


def test_has_more_true_as_a_string_means_another_page() -> None:
    answer = b'{"result_num": 0, "result": [], "has_more": "true", "log_id": 3}'
    with (
        serving(answering(answer)) as url,
        ImageSearchClient(url, api_key="ak", secret_key="sk") as client,
    ):
        assert client.search("similar", image=b"GIF89a", pn=0, rn=1).has_more is True


def test_token_endpoint_temporarily_unavailable_is_transient() -> None:
    refusal = b'{"error": "temporarily_unavailable", "error_description": "busy"}'
    with (
        serving(
            answering(b"{}", token_body=refusal, token_status="503 Service Unavailable")
        ) as url,
        ImageSearchClient(url, api_key="ak", secret_key="sk") as client,
        pytest.raises(TransientError, match="busy"),
    ):
        client.check()


def test_token_answer_without_a_token_is_transient() -> None:
    with (
        serving(answering(b"{}", token_body=b'{"expires_in": 5}')) as url,
        ImageSearchClient(url, api_key="ak", secret_key="sk") as client,
        pytest.raises(TransientError, match="access_token"),
    ):
        client.search("similar", image=b"GIF89a")


@pytest.mark.parametrize(
    "status,body,error",
    [
        ("200 OK", b"<html>maintenance</html>", TransientError),
        ("503 Service Unavailable", b"", TransientError),
        ("404 Not Found", b"no such page", BadRequestError),
        (
            "200 OK",
            b'{"error_code": 6, "error_msg": "No permission to access data"}',
            FatalSetupError,
        ),
    ],
)
def test_answers_map_to_their_error_class_over_http(
    status: str, body: bytes, error: type[Exception]
) -> None:
    with (
        serving(answering(body, status=status)) as url,
        ImageSearchClient(url, api_key="ak", secret_key="sk", auth="bce") as client,
        pytest.raises(error),
    ):
        client.delete("product", cont_signs=["1,2"])


def test_redirect_is_not_followed_and_names_the_endpoint() -> None:
    with (
        serving(answering(b"", status="302 Found")) as url,
        ImageSearchClient(url, api_key="ak", secret_key="sk", auth="bce") as client,
        pytest.raises(FatalSetupError, match="api.endpoint") as info,
    ):
        client.update("similar", cont_sign="1,2", brief="x")
    assert info.value.code == 302
