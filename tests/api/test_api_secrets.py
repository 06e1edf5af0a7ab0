"""Secret key, access tokens and signatures never reach a log line, an error or a repr."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from syncd.api.baidu.client import ImageSearchClient
from syncd.api.redact import redact_url
from syncd.config import AuthMode
from syncd.errors import ApiError
from syncd.gallery.server import GalleryServer

from .tiny_server import closed_port

AK, SK = "test-ak", "test-sk"


def test_redact_url_blanks_token_and_client_secret() -> None:
    url = (
        "https://h/p?grant_type=client_credentials&client_id=ak&client_secret=s3&access_token=24.x"
    )
    assert redact_url(url) == (
        "https://h/p?grant_type=client_credentials&client_id=ak&client_secret=***&access_token=***"
    )


@pytest.mark.parametrize("auth", ["token", "bce"])
def test_no_secret_in_logs_errors_or_reprs(
    gallery_server: GalleryServer,
    auth: AuthMode,
    caplog: pytest.LogCaptureFixture,
    issued_tokens: list[str],
    make_image: Callable[..., bytes],
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[ApiError] = []

    def expect_error(call: Callable[[], object]) -> None:
        try:
            call()
        except ApiError as exc:
            logging.getLogger("test").exception("call failed")
            errors.append(exc)
        else:
            raise AssertionError("the call was expected to fail")

    with ImageSearchClient(gallery_server.url, api_key=AK, secret_key=SK, auth=auth) as client:
        image = make_image(1)
        client.add("same_hq", image=image, brief="b")
        client.search("same_hq", image=image)
        expect_error(lambda: client.add("same_hq", image=image, brief="b"))  # 216681
        gallery_server.faults.transient_rate = 1.0
        for _ in range(6):  # error codes, HTTP 502, a dropped connection
            expect_error(lambda: client.search("same_hq", image=image))
        gallery_server.faults.transient_rate = 0.0
        gallery_server.faults.token_lifetime = 0.0
        if auth == "token":
            expect_error(lambda: client.search("same_hq", image=image))  # 111 twice
        gallery_server.faults.latency = 0.5
        client_repr = repr(client)
        with ImageSearchClient(
            gallery_server.url,
            api_key=AK,
            secret_key=SK,
            auth=auth,
            timeout=0.1,
        ) as slow:
            expect_error(lambda: slow.search("same_hq", image=image))  # timeout
    dead_port = closed_port()
    with ImageSearchClient(
        f"http://127.0.0.1:{dead_port}", api_key=AK, secret_key=SK, auth=auth
    ) as dead:
        expect_error(lambda: dead.search("same_hq", image=image))
    with ImageSearchClient(
        gallery_server.url, api_key=AK, secret_key="wrong-sk", auth=auth
    ) as wrong:
        expect_error(wrong.check)

    if auth == "token":
        assert issued_tokens, "the client obtained tokens"
    secrets = [SK, "wrong-sk", *issued_tokens]
    texts = [client_repr, *(str(e) for e in errors), *(repr(e) for e in errors)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    assert any("access_token=***" in t for t in texts) or auth == "bce"
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert "bce-auth-v1/" not in text  # no authorization header value (signature)
