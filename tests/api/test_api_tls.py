"""TLS is always verified; api.ca_bundle adds a CA to certifi's instead of replacing it."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import pytest
from requests.utils import DEFAULT_CA_BUNDLE_PATH

from syncd.api.baidu.client import ImageSearchClient
from syncd.config import AuthMode
from syncd.errors import ConfigError, FatalSetupError, TransientError

from .tiny_server import answering, closed_port, make_ca_and_server_cert, serving

SEARCH_ANSWER = b'{"result_num": 0, "result": [], "has_more": "true", "log_id": 9}'

needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the openssl command makes the test CA"
)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_ca_and_server_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_url(tls_files: tuple[Path, Path, Path]):  # type: ignore[no-untyped-def]
    _, cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving(answering(SEARCH_ANSWER), context) as url:
        yield url


@needs_openssl
@pytest.mark.parametrize("auth", ["token", "bce"])
def test_gallery_behind_a_private_ca_is_reached_with_ca_bundle(
    tls_files: tuple[Path, Path, Path], tls_url: str, auth: AuthMode
) -> None:
    ca, _, _ = tls_files
    with ImageSearchClient(
        tls_url,
        api_key="ak",
        secret_key="sk",
        auth=auth,
        ca_bundle=str(ca),
    ) as client:
        page = client.search("similar", image=b"\x89PNG")
    assert page.has_more is True and page.log_id == 9


@needs_openssl
def test_private_ca_certificate_is_refused_without_ca_bundle(tls_url: str) -> None:
    with (
        ImageSearchClient(tls_url, api_key="ak", secret_key="sk", auth="bce") as client,
        pytest.raises(FatalSetupError, match="certificate"),
    ):
        client.search("similar", image=b"\x89PNG")


@needs_openssl
def test_ca_bundle_keeps_the_public_cas(tls_files: tuple[Path, Path, Path]) -> None:
    ca, _, _ = tls_files
    client = ImageSearchClient(
        "https://aip.baidubce.com", api_key="ak", secret_key="sk", ca_bundle=str(ca)
    )
    verify = client._verify
    assert isinstance(verify, str)
    combined = Path(verify).read_text()
    assert Path(DEFAULT_CA_BUNDLE_PATH).read_text().strip() in combined
    assert ca.read_text().strip() in combined
    # every certificate in it loads: verification has the public CAs and ours
    context = ssl.create_default_context(cafile=verify)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert (
        len(context.get_ca_certs())
        == len(ssl.create_default_context(cafile=DEFAULT_CA_BUNDLE_PATH).get_ca_certs()) + 1
    )
    client.close()
    assert not Path(verify).exists()


@needs_openssl
def test_requests_ca_bundle_in_the_environment_is_trusted_as_requests_would(
    tls_files: tuple[Path, Path, Path], tls_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, _, _ = tls_files
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    with ImageSearchClient(tls_url, api_key="ak", secret_key="sk", auth="bce") as client:
        page = client.search("similar", image=b"\x89PNG")
    assert page.log_id == 9


def test_proxy_from_the_environment_is_used_unless_no_proxy_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    with serving(answering(SEARCH_ANSWER)) as url:
        with (
            ImageSearchClient(url, api_key="ak", secret_key="sk", auth="bce") as client,
            pytest.raises(TransientError, match="ProxyError"),
        ):
            client.search("similar", image=b"\x89PNG")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with ImageSearchClient(url, api_key="ak", secret_key="sk", auth="bce") as client:
            assert client.search("similar", image=b"\x89PNG").log_id == 9


def test_ca_bundle_that_is_not_a_certificate_is_a_config_error(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="api.ca_bundle"):
        ImageSearchClient("https://x.example", api_key="ak", secret_key="sk", ca_bundle=str(junk))
    with pytest.raises(ConfigError, match="api.ca_bundle"):
        ImageSearchClient(
            "https://x.example",
            api_key="ak",
            secret_key="sk",
            ca_bundle=str(tmp_path / "missing.pem"),
        )
