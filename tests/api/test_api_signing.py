"""bce-auth-v1 signing and the shared access token, checked against the BCE spec text."""

from __future__ import annotations

import hashlib
import hmac
import threading
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from syncd.api.baidu.auth import (
    TokenCache,
    bce_authorization,
    canonical_query_string,
    renewal_delay,
    uri_encode,
)

AK = "46bd9968a6194b4bbdf0341f2286ccce"  # the access key of the API document's example
SK = "example-secret-key"
TS = "2015-03-24T13:02:00Z"


def _hex_hmac(key: str, text: str) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def test_signature_of_the_documents_example_request_follows_the_spec_step_by_step() -> None:
    # spec: SigningKey = HMAC-SHA256-HEX(SK, "bce-auth-v1/{ak}/{timestamp}/{expiration}")
    signing_key = _hex_hmac(SK, f"bce-auth-v1/{AK}/{TS}/1800")
    # spec: CanonicalRequest = method \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders
    canonical = "\n".join(
        [
            "POST",
            "/rest/2.0/face/v1/detect",
            "",
            "host:aip.baidubce.com\nx-bce-date:2015-03-24T13%3A02%3A00Z",
        ]
    )
    signature = _hex_hmac(signing_key, canonical)
    expected = f"bce-auth-v1/{AK}/{TS}/1800/host;x-bce-date/{signature}"

    got = bce_authorization(
        access_key=AK,
        secret_key=SK,
        method="post",
        path="/rest/2.0/face/v1/detect",
        query={},
        headers={"Host": " aip.baidubce.com ", "x-bce-date": TS, "content-type": "ignored"},
        timestamp=TS,
    )
    assert got == expected


def test_signature_encodes_port_path_and_sorted_query_as_the_spec_says() -> None:
    signing_key = _hex_hmac(SK, f"bce-auth-v1/{AK}/{TS}/1800")
    canonical = (
        "POST\n"
        "/rest/a%20b/%C3%BC/add\n"
        "a=%2F&access_token=x%2By&b=2\n"
        "host:127.0.0.1%3A8601\n"
        "x-bce-date:2015-03-24T13%3A02%3A00Z"
    )
    expected = f"bce-auth-v1/{AK}/{TS}/1800/host;x-bce-date/{_hex_hmac(signing_key, canonical)}"
    got = bce_authorization(
        access_key=AK,
        secret_key=SK,
        method="POST",
        path="/rest/a b/ü/add",
        query={"b": "2", "access_token": "x+y", "a": "/"},
        headers={"x-bce-date": TS, "host": "127.0.0.1:8601"},
        timestamp=TS,
    )
    assert got == expected


def test_a_different_secret_gives_a_different_signature() -> None:
    args = dict(
        access_key=AK,
        method="POST",
        path="/p",
        query={},
        timestamp=TS,
        headers={"host": "h", "x-bce-date": TS},
    )
    assert bce_authorization(secret_key="a", **args) != bce_authorization(secret_key="b", **args)  # type: ignore[arg-type]


@given(st.text())
def test_uri_encode_keeps_only_unreserved_characters(value: str) -> None:
    # quote() with nothing extra marked safe leaves exactly A-Za-z0-9-_.~ literal
    assert uri_encode(value) == quote(value, safe="")
    assert uri_encode(value, keep_slash=True) == quote(value, safe="/")


def test_canonical_query_string_leaves_out_authorization() -> None:
    assert canonical_query_string({"authorization": "x", "k": "v w"}) == "k=v%20w"


def test_token_is_renewed_at_ninety_percent_or_an_hour_before_it_ends() -> None:
    thirty_days = 30 * 24 * 3600.0
    assert renewal_delay(thirty_days) == thirty_days * 0.9
    assert renewal_delay(4 * 3600.0) == 3 * 3600.0  # one hour before beats 90 %
    assert renewal_delay(1.5 * 3600.0) == 0.75 * 3600.0  # but not before half its life
    assert renewal_delay(10.0) == 5.0
    assert renewal_delay(0.0) == 0.0


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_cache_fetches_once_until_the_renewal_time() -> None:
    clock = _Clock()
    fetched: list[int] = []

    def fetch() -> tuple[str, float]:
        fetched.append(1)
        return f"tok{len(fetched)}", 100.0

    cache = TokenCache(fetch, clock)
    assert cache.get().value == "tok1"
    clock.now = 49.9
    assert cache.get().value == "tok1"
    clock.now = 50.0
    assert cache.get().value == "tok2"
    assert len(fetched) == 2


def test_token_refused_by_many_threads_is_renewed_once() -> None:
    fetched: list[int] = []
    lock = threading.Lock()

    def fetch() -> tuple[str, float]:
        with lock:
            fetched.append(1)
            return f"tok{len(fetched)}", 1000.0

    cache = TokenCache(fetch)
    stale = cache.get()
    barrier = threading.Barrier(8)
    seen: list[str] = []

    def worker() -> None:
        barrier.wait()
        seen.append(cache.renew(stale.generation).value)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fetched) == 2
    assert seen == ["tok2"] * 8


def test_token_repr_hides_its_value() -> None:
    cache = TokenCache(lambda: ("very-secret-token", 100.0))
    token = cache.get()
    assert "very-secret-token" not in repr(token)
    assert "very-secret-token" not in repr(cache)
