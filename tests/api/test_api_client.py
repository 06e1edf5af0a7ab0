"""The client against the real local gallery server over loopback HTTP, in both auth modes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.api.baidu.client import ImageSearchClient
from syncd.api.baidu.galleries import GALLERY_NAMES, GalleryName
from syncd.api.baidu.params import CallParams
from syncd.config import ApiConfig, AuthMode
from syncd.errors import (
    ApiError,
    BadImageError,
    BadRequestError,
    ConfigError,
    FatalSetupError,
    ItemExistsError,
    ItemMissingError,
    QuotaError,
    RateError,
    TokenError,
    TransientError,
    ValidationError,
)
from syncd.gallery.server import GalleryServer

from .tiny_server import closed_port, serving, serving_files

AK, SK = "test-ak", "test-sk"
MakeImage = Callable[..., bytes]


@pytest.fixture(params=["token", "bce"])
def auth(request: pytest.FixtureRequest) -> AuthMode:
    mode: AuthMode = request.param
    return mode


@pytest.fixture
def client(gallery_server: GalleryServer, auth: AuthMode) -> Iterator[ImageSearchClient]:
    with ImageSearchClient(
        gallery_server.url,
        api_key=AK,
        secret_key=SK,
        auth=auth,
        timeout=10,
    ) as made:
        yield made


@pytest.fixture
def token_client(gallery_server: GalleryServer) -> Iterator[ImageSearchClient]:
    with ImageSearchClient(gallery_server.url, api_key=AK, secret_key=SK, timeout=10) as made:
        yield made


def _signs(page_hits: list[Any]) -> list[str]:
    return [hit.cont_sign for hit in page_hits]


# -- every operation x gallery x auth mode ---------------------------------------------------


@pytest.mark.parametrize("gallery", GALLERY_NAMES)
def test_add_search_update_delete_by_image_and_cont_sign(
    client: ImageSearchClient, gallery: GalleryName, make_image: MakeImage
) -> None:
    image = make_image(11)
    added = client.add(gallery, image=image, brief="first", tags=(100, 11))
    assert added.cont_sign and added.log_id

    page = client.search(gallery, image=image, tags=(100,))
    assert page.hits[0].cont_sign == added.cont_sign and page.hits[0].brief == "first"
    assert page.result_num == len(page.hits) and page.has_more is False

    client.update(gallery, cont_sign=added.cont_sign, brief="second", tags=(7,))
    assert client.search(gallery, image=image, tags=(7,)).hits[0].brief == "second"
    assert added.cont_sign not in _signs(client.search(gallery, image=image, tags=(100,)).hits)

    client.update(gallery, image=image, brief="third")
    assert client.search(gallery, image=image).hits[0].brief == "third"

    assert client.delete(gallery, cont_signs=[added.cont_sign]).log_id
    assert added.cont_sign not in _signs(client.search(gallery, image=image).hits)
    with pytest.raises(ItemMissingError):
        client.update(gallery, cont_sign=added.cont_sign, brief="gone")


@pytest.mark.parametrize("gallery", GALLERY_NAMES)
def test_every_operation_takes_an_image_url(
    client: ImageSearchClient, gallery: GalleryName, make_image: MakeImage
) -> None:
    image = make_image(12)
    with serving(serving_files({"a.jpg": image})) as base:
        url = f"{base}/a.jpg"
        added = client.add(gallery, url=url, brief="by url", tags=(5,))
        assert client.search(gallery, url=url).hits[0].cont_sign == added.cont_sign
        client.update(gallery, url=url, brief="renamed")
        assert client.search(gallery, image=image).hits[0].brief == "renamed"
        client.delete(gallery, url=url)
    assert added.cont_sign not in _signs(client.search(gallery, image=image).hits)


@pytest.mark.parametrize("gallery", GALLERY_NAMES)
def test_delete_by_image_and_a_batch_of_cont_signs_cost_one_call_each(
    client: ImageSearchClient,
    gallery_server: GalleryServer,
    gallery: GalleryName,
    make_image: MakeImage,
) -> None:
    images = [make_image(20 + i) for i in range(4)]
    signs = [
        client.add(gallery, image=img, brief=f"b{i}").cont_sign for i, img in enumerate(images)
    ]
    gallery_server.reset_counts()
    client.delete(gallery, cont_signs=signs[:3])
    client.delete(gallery, image=images[3])
    assert gallery_server.call_counts() == {(gallery, "delete"): 2}
    left = client.search(gallery, image=images[0]).hits
    assert not set(signs) & set(_signs(left))


def test_search_pages_and_has_more(client: ImageSearchClient, make_image: MakeImage) -> None:
    signs = {client.add("similar", image=make_image(30 + i)).cont_sign for i in range(5)}
    probe = make_image(30)
    first = client.search("similar", image=probe, pn=0, rn=2)
    assert len(first.hits) == 2 and first.has_more is True
    last = client.search("similar", image=probe, pn=4, rn=2)
    assert len(last.hits) == 1 and last.has_more is False
    everything = client.search("similar", image=probe, rn=10)
    assert set(_signs(everything.hits)) == signs and everything.has_more is False


@pytest.mark.parametrize("gallery", ["similar", "product"])
def test_tag_logic_chooses_and_or_or(
    client: ImageSearchClient, gallery: GalleryName, make_image: MakeImage
) -> None:
    one = client.add(gallery, image=make_image(40), tags=(1,)).cont_sign
    both = client.add(gallery, image=make_image(41), tags=(1, 2)).cont_sign
    probe = make_image(40)
    assert set(_signs(client.search(gallery, image=probe, tags=(1, 2), tag_logic=0).hits)) == {both}
    assert set(_signs(client.search(gallery, image=probe, tags=(1, 2), tag_logic=1).hits)) == {
        one,
        both,
    }


# -- errors from real answers ----------------------------------------------------------------


def test_adding_an_image_twice_raises_item_exists(
    client: ImageSearchClient, make_image: MakeImage
) -> None:
    image = make_image(50)
    client.add("same_hq", image=image, brief="a")
    with pytest.raises(ItemExistsError) as info:
        client.add("same_hq", image=image, brief="b")
    assert info.value.code == 216681 and info.value.log_id


@pytest.mark.parametrize("gallery", GALLERY_NAMES)
def test_unknown_item_raises_item_missing(client: ImageSearchClient, gallery: GalleryName) -> None:
    with pytest.raises(ItemMissingError) as info:
        client.update(gallery, cont_sign="1,1", brief="x")
    assert info.value.code == 216680
    with pytest.raises(ItemMissingError):
        client.delete(gallery, cont_signs=["1,1"])


RAW_REFUSALS: list[tuple[GalleryName, CallParams, type[ApiError], int]] = [
    ("similar", CallParams("add", (("image", ""),)), BadImageError, 216200),
    ("similar", CallParams("add", (("image", "@@not base64@@"),)), BadImageError, 216203),
    ("similar", CallParams("add", (("tags", "0"),), b"GIF89a"), BadRequestError, 216100),
    ("similar", CallParams("search", ()), BadRequestError, 216101),
    ("similar", CallParams("add", (("brief", "x" * 300),), b"GIF89a"), BadRequestError, 216103),
    ("same_hq", CallParams("add", (), b"GIF89a"), BadRequestError, 282003),
    ("similar", CallParams("add", (("url", "http://x/" + "a" * 1100),)), BadRequestError, 282114),
    (
        "product",
        CallParams("update", (("cont_sign", "1,1;2,2"), ("brief", "b"))),
        BadRequestError,
        216100,
    ),
]


@pytest.mark.parametrize(
    "gallery,params,cls,code", RAW_REFUSALS, ids=[f"{r[3]}-{r[1].op}" for r in RAW_REFUSALS]
)
def test_server_refusals_reach_the_caller_as_their_class(
    client: ImageSearchClient,
    gallery: GalleryName,
    params: CallParams,
    cls: type[ApiError],
    code: int,
) -> None:
    # sent as they are: these are inputs the operation methods refuse before calling
    with pytest.raises(cls) as info:
        client.send(gallery, params)
    assert info.value.code == code and info.value.log_id and info.value.message


def test_undecodable_image_raises_bad_image(client: ImageSearchClient) -> None:
    with pytest.raises(BadImageError) as info:
        client.add("similar", image=b"this is not an image at all")
    assert info.value.code == 216201


def test_image_below_15_px_raises_bad_image(
    client: ImageSearchClient, make_image: MakeImage
) -> None:
    with pytest.raises(BadImageError) as info:
        client.add("product", image=make_image(51, size=(10, 10)))
    assert info.value.code == 216202


def test_unreachable_image_url_raises_bad_image(client: ImageSearchClient) -> None:
    with pytest.raises(BadImageError) as info:
        client.search("similar", url=f"http://127.0.0.1:{closed_port()}/a.jpg")
    assert info.value.code == 282113


def test_daily_quota_raises_quota_error(
    client: ImageSearchClient, gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    gallery_server.faults.daily_limit = 1
    client.search("similar", image=make_image(52))
    with pytest.raises(QuotaError) as info:
        client.search("similar", image=make_image(52))
    assert info.value.code == 17


def test_qps_limit_raises_rate_error(
    client: ImageSearchClient, gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    gallery_server.faults.qps_limit = 0.5
    image = make_image(53)
    client.search("similar", image=image)
    with pytest.raises(RateError) as info:
        client.search("similar", image=image)
    assert info.value.code == 18


def test_gallery_not_set_up_raises_fatal_setup(
    client: ImageSearchClient, gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    gallery_server.faults.not_initialized = frozenset({"product"})
    with pytest.raises(FatalSetupError) as info:
        client.add("product", image=make_image(54))
    assert info.value.code == 216017
    client.add("similar", image=make_image(54))


def test_server_trouble_and_dropped_connections_are_transient(
    client: ImageSearchClient, gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    gallery_server.faults.transient_rate = 1.0
    codes = set()
    image = make_image(55)
    for _ in range(6):  # the server cycles 1, 2, 282000, 216630, HTTP 502, dropped connection
        with pytest.raises(TransientError) as info:
            client.search("same_hq", image=image)
        codes.add(info.value.code)
    assert codes == {1, 2, 282000, 216630, 502, 0}


def test_answer_slower_than_the_timeout_is_transient(
    gallery_server: GalleryServer, auth: AuthMode, make_image: MakeImage
) -> None:
    with ImageSearchClient(
        gallery_server.url,
        api_key=AK,
        secret_key=SK,
        auth=auth,
        timeout=0.2,
    ) as slow:
        slow.check()
        gallery_server.faults.latency = 0.6
        with pytest.raises(TransientError, match="Timeout"):
            slow.search("similar", image=make_image(56))


def test_dead_endpoint_is_transient(auth: AuthMode) -> None:
    with ImageSearchClient(
        f"http://127.0.0.1:{closed_port()}", api_key=AK, secret_key=SK, auth=auth, timeout=2
    ) as dead:
        with pytest.raises(TransientError) as info:
            dead.search("similar", image=b"GIF89a")
        assert info.value.code == 0
        with pytest.raises(TransientError):
            dead.check()


def test_wrong_endpoint_path_is_fatal_setup(gallery_server: GalleryServer, auth: AuthMode) -> None:
    with (
        ImageSearchClient(
            f"{gallery_server.url}/wrong/prefix", api_key=AK, secret_key=SK, auth=auth
        ) as wrong,
        pytest.raises(FatalSetupError) as info,
    ):
        wrong.search("similar", image=b"GIF89a")
    assert info.value.code == 3


def test_wrong_secret_key_is_fatal_setup(gallery_server: GalleryServer, auth: AuthMode) -> None:
    with ImageSearchClient(
        gallery_server.url, api_key=AK, secret_key="not-the-key", auth=auth
    ) as wrong:
        with pytest.raises(FatalSetupError) as info:
            wrong.check()
        assert info.value.code == (13 if auth == "token" else 14)
        with pytest.raises(FatalSetupError):
            wrong.search("similar", image=b"GIF89a")


def test_check_accepts_good_credentials_and_names_an_uninitialised_gallery(
    client: ImageSearchClient, gallery_server: GalleryServer
) -> None:
    client.check()
    client.check("product")
    gallery_server.faults.not_initialized = frozenset({"product"})
    with pytest.raises(FatalSetupError) as info:
        client.check("product")
    assert info.value.code == 216017


# -- validation happens before any call --------------------------------------------------------


def test_invalid_requests_make_no_call(
    client: ImageSearchClient, gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    image = make_image(60)
    bad_calls: list[Callable[[], object]] = [
        lambda: client.add("same_hq", image=image, brief="é" * 200),
        lambda: client.add("same_hq", image=image),
        lambda: client.add("similar", image=image, tags=(1, 2, 3)),
        lambda: client.add("product", image=image, tags=(0,)),
        lambda: client.add("similar", image=image, url="http://x/a.jpg"),
        lambda: client.add("similar", image=bytes(3 * 1024 * 1024 + 1)),
        lambda: client.search("similar", image=image, rn=0),
        lambda: client.search("similar", image=image, pn=1001),
        lambda: client.search("similar", image=image, tag_logic=3),
        lambda: client.search("similar", url="x" * 2000),
        lambda: client.update("similar", cont_sign="1,1"),
        lambda: client.delete("similar", cont_signs=[]),
        lambda: client.delete("similar", cont_signs=[f"{i},1" for i in range(1001)]),
        lambda: client.search("nonsense", image=image),  # type: ignore[arg-type]
    ]
    gallery_server.reset_counts()
    for call in bad_calls:
        with pytest.raises(ValidationError):
            call()
    assert gallery_server.call_counts() == {}
    assert client.call_counts() == {}
    assert client.token_requests == 0


# -- access token renewal ---------------------------------------------------------------------


def _in_threads(count: int, work: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(count)
    results: list[object] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            outcome: object = work()
        except Exception as exc:  # noqa: BLE001 - collected and asserted by the caller
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_token_refused_as_expired_is_renewed_once_for_eight_workers(
    token_client: ImageSearchClient,
    gallery_server: GalleryServer,
    issued_tokens: list[str],
    make_image: MakeImage,
) -> None:
    image = make_image(70)
    token_client.add("similar", image=image)
    assert len(issued_tokens) == 1
    # the token the client holds is 1.2 s old: a lifetime of 1 s makes the server answer 111
    threading.Event().wait(1.2)
    gallery_server.faults.token_lifetime = 1.0
    gallery_server.reset_counts()

    results = _in_threads(8, lambda: token_client.search("similar", image=image))

    assert all(not isinstance(r, Exception) for r in results), results
    assert len(issued_tokens) == 2
    assert token_client.token_requests == 2
    # each worker that used the old token was refused once and repeated its call once
    calls = gallery_server.call_counts()[("similar", "search")]
    assert 8 < calls <= 16
    assert token_client.call_counts()[("similar", "search")] == calls


def test_token_near_its_end_is_renewed_once_before_use_by_eight_workers(
    token_client: ImageSearchClient,
    gallery_server: GalleryServer,
    issued_tokens: list[str],
    make_image: MakeImage,
) -> None:
    gallery_server.faults.token_lifetime = 3.0
    image = make_image(71)
    token_client.add("similar", image=image)
    threading.Event().wait(1.6)  # past half of its 3 s life: due for renewal
    gallery_server.reset_counts()

    results = _in_threads(8, lambda: token_client.search("similar", image=image))

    assert all(not isinstance(r, Exception) for r in results), results
    assert len(issued_tokens) == 2
    assert gallery_server.call_counts() == {("similar", "search"): 8}  # none refused


def test_unknown_token_is_renewed_once_and_the_call_repeated(
    tmp_path: Path, make_image: MakeImage
) -> None:
    first = GalleryServer(tmp_path / "one", api_key=AK, secret_key=SK)
    first.start()
    port = first.port
    with ImageSearchClient(first.url, api_key=AK, secret_key=SK) as client:
        client.check()
        first.stop()
        # a server that never issued the client's token answers 110
        with GalleryServer(tmp_path / "two", port=port, api_key=AK, secret_key=SK) as second:
            client.add("similar", image=make_image(72))
            assert second.call_counts() == {("similar", "add"): 2}
        assert client.token_requests == 2


def test_call_repeated_after_a_token_renewal_waits_for_the_callers_pace(
    token_client: ImageSearchClient,
    gallery_server: GalleryServer,
    issued_tokens: list[str],
    make_image: MakeImage,
) -> None:
    paced: list[int] = []
    token_client.pace = lambda: paced.append(sum(gallery_server.call_counts().values()))
    token_client.search("similar", image=make_image(73))
    assert paced == [0]  # every request waits for the caller's pace before it leaves
    gallery_server.faults.token_lifetime = 0.0
    with pytest.raises(TokenError):
        token_client.search("similar", image=make_image(73))
    # asked before the call, and again after the refused call and before its repetition
    assert paced == [0, 1, 2]
    assert gallery_server.call_counts()[("similar", "search")] == 3


def test_fresh_token_refused_again_raises_token_error(
    token_client: ImageSearchClient,
    gallery_server: GalleryServer,
    issued_tokens: list[str],
) -> None:
    gallery_server.faults.token_lifetime = 0.0  # every token is expired when used
    with pytest.raises(TokenError) as info:
        token_client.search("similar", image=b"GIF89a")
    assert info.value.code == 111
    assert gallery_server.call_counts() == {("similar", "search"): 2}


# -- accounting, construction ------------------------------------------------------------------


def test_client_counts_the_calls_it_makes_like_the_server(
    client: ImageSearchClient, gallery_server: GalleryServer, make_image: MakeImage
) -> None:
    signs = [client.add(g, image=make_image(80), brief="x").cont_sign for g in GALLERY_NAMES]
    client.search("product", image=make_image(80))
    client.update("same_hq", cont_sign=signs[0], brief="y")
    client.delete("similar", cont_signs=signs[1:2])
    with pytest.raises(ItemExistsError):
        client.add("product", image=make_image(80))
    assert client.call_counts() == gallery_server.call_counts()
    assert client.call_counts()[("product", "add")] == 2


def test_from_config_uses_the_resolved_endpoint_and_the_secret_file(
    gallery_server: GalleryServer, tmp_path: Path, make_image: MakeImage
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SK + "\n")
    api = ApiConfig(
        endpoint="embedded",
        auth="bce",
        api_key=AK,
        secret_key_file=str(secret_file),
        concurrency=3,
        timeout=5.0,
    )
    with pytest.raises(ConfigError, match="embedded"):
        ImageSearchClient.from_config(api)
    with ImageSearchClient.from_config(api, endpoint_url=gallery_server.url) as client:
        client.check()
        assert client.add("similar", image=make_image(81)).cont_sign
        adapter = client._session.get_adapter(gallery_server.url)
        assert adapter._pool_maxsize == 3  # type: ignore[attr-defined]
        assert adapter.max_retries.total == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "endpoint", ["ftp://x", "aip.baidubce.com", "https://user:pw@x.example", "https://x/?a=1"]
)
def test_bad_endpoint_is_a_config_error(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="api.endpoint"):
        ImageSearchClient(endpoint, api_key=AK, secret_key=SK)


def test_missing_keys_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="secret_key"):
        ImageSearchClient("https://x.example", api_key=AK, secret_key="")
