"""Where calls go: ``api.endpoint`` as configured, or the embedded local gallery
(README, The local gallery server).

``endpoint = "embedded"`` runs the local gallery server in this process on loopback,
with its data in a ``gallery`` folder beside the ledger, for as long as the context lasts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from syncd.api.baidu.client import ImageSearchClient
from syncd.config import ApiConfig, Config

EMBEDDED = "embedded"
#: the embedded gallery accepts any key; the client still needs something to present
_EMBEDDED_KEY = "embedded"


@contextmanager
def open_endpoint(config: Config) -> Iterator[str]:
    """Yield the base URL of the gallery API ``config`` points at.

    For ``"embedded"`` the local gallery server is started on 127.0.0.1 (a free port)
    with its data under ``<ledger folder>/gallery`` and stopped when the context ends.
    """
    if config.api.endpoint != EMBEDDED:
        yield config.api.endpoint
        return
    from syncd.gallery.server import GalleryServer

    data_dir = config.ledger.path.parent / "gallery"
    data_dir.mkdir(parents=True, exist_ok=True)
    server = GalleryServer(data_dir=data_dir, host="127.0.0.1", port=0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def embedded_api(api: ApiConfig) -> ApiConfig:
    """``api`` with stand-in keys when it is embedded and none are set (any key is accepted)."""
    if api.endpoint != EMBEDDED:
        return api
    return replace(
        api,
        api_key=api.api_key or _EMBEDDED_KEY,
        secret_key=api.secret_key or (_EMBEDDED_KEY if not api.secret_key_file else ""),
    )


@contextmanager
def open_client(config: Config) -> Iterator[ImageSearchClient]:
    """A client for ``config``'s account, its endpoint resolved (and served, if embedded).

    Raises ConfigError for an unusable ``[api]`` section.
    """
    with open_endpoint(config) as url:
        client = ImageSearchClient.from_config(embedded_api(config.api), endpoint_url=url)
        try:
            yield client
        finally:
            client.close()
