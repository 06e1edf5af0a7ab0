"""HTTP transport of the client: one pooled keep-alive session, verified TLS, no hidden retries."""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.util.retry import Retry

from syncd.api.redact import scrub
from syncd.errors import ApiError, ConfigError, FatalSetupError, TransientError

#: seconds allowed to open a connection, at most (the read timeout is api.timeout)
MAX_CONNECT_TIMEOUT = 10.0


def timeouts(timeout: float) -> tuple[float, float]:
    """The (connect, read) timeouts in seconds for a call timeout of ``timeout`` seconds."""
    return (min(timeout, MAX_CONNECT_TIMEOUT), timeout)


def combined_ca_file(ca_bundle: str) -> Path:
    """A new PEM file holding the CAs requests trusts (certifi's) followed by ``ca_bundle``'s.

    The caller owns the file and removes it when done. Raises ConfigError when
    ``ca_bundle`` cannot be read or holds no certificate.
    """
    try:
        extra = Path(ca_bundle).read_bytes()
    except OSError as exc:
        raise ConfigError(f"api.ca_bundle: cannot read {ca_bundle}: {exc.strerror}") from None
    try:
        # loading proves the file holds at least one certificate before we trust it
        ssl.create_default_context(cadata=extra.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"api.ca_bundle: {ca_bundle} holds no PEM certificate ({exc})") from None
    fd, name = tempfile.mkstemp(prefix="syncd-ca-", suffix=".pem")
    with os.fdopen(fd, "wb") as out:
        out.write(Path(DEFAULT_CA_BUNDLE_PATH).read_bytes())
        out.write(b"\n")
        out.write(extra)
        out.write(b"\n")
    return Path(name)


def environment_settings(endpoint: str, verify: bool | str) -> tuple[dict[str, str], bool | str]:
    """The proxies and CA bundle the environment sets for calls to ``endpoint``.

    What requests would look up on every call (``HTTPS_PROXY``, ``NO_PROXY``, …,
    ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``), looked up once: on small images that
    lookup costs a third of a call's CPU. ``verify`` is the client's own setting; an
    explicit CA file (``api.ca_bundle``) wins over the environment's, as in requests.
    """
    proxies = {
        key: value
        for key, value in requests.utils.get_environ_proxies(endpoint).items()
        if key != "no"  # already applied: NO_PROXY decided whether endpoint is proxied
    }
    if verify is True:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return proxies, verify


def build_session(pool_size: int) -> requests.Session:
    """A keep-alive session with ``pool_size`` pooled connections per host and no retries.

    Retries belong to the sync engine, which knows the error classes and backs off. The
    session does not read the environment on each call (``environment_settings`` did it
    once); pass its proxies and verify to every request.
    """
    session = requests.Session()
    session.trust_env = False
    no_retries = Retry(total=0, connect=0, read=False, redirect=0, status=0, other=0)
    adapter = HTTPAdapter(
        pool_connections=pool_size, pool_maxsize=pool_size, max_retries=no_retries
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _is_certificate_error(exc: requests.exceptions.SSLError) -> bool:
    # urllib3 wraps the ssl error in MaxRetryError; its text keeps OpenSSL's reason
    return "CERTIFICATE_VERIFY_FAILED" in str(exc).upper().replace(" ", "_")


def transport_error(exc: requests.RequestException, secrets: tuple[str, ...]) -> ApiError:
    """The taxonomy error for a call that got no usable answer (code 0: nothing arrived).

    A certificate that fails verification is a setup problem (FatalSetupError); timeouts,
    refused or dropped connections and other transport trouble are transient.
    """
    detail = scrub(str(exc), secrets)[:300]
    name = type(exc).__name__
    if isinstance(exc, requests.exceptions.SSLError) and _is_certificate_error(exc):
        return FatalSetupError(0, f"TLS certificate verification failed: {detail}")
    return TransientError(0, f"{name}: {detail}")
