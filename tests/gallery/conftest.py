"""Fixtures of the gallery server tests: API clients in both auth modes, an image host."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from syncd.gallery.server import GalleryServer

from .helpers import ApiClient


@pytest.fixture(params=["token", "bce"])
def client(request: pytest.FixtureRequest, gallery_server: GalleryServer) -> ApiClient:
    """A raw API client of ``gallery_server``, once per auth mode."""
    return ApiClient(gallery_server, auth=request.param)


@pytest.fixture
def token_client(gallery_server: GalleryServer) -> ApiClient:
    """A raw API client of ``gallery_server`` in access_token mode."""
    return ApiClient(gallery_server)


class ImageHost:
    """A tiny web server on loopback that serves images for url inputs."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.startswith("/slow/"):
                    time.sleep(1.5)
                body = host.files.get(self.path.removeprefix("/slow"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def put(self, name: str, data: bytes) -> str:
        """Serve ``data`` at /name; its url."""
        self.files[f"/{name}"] = data
        return f"{self.url}/{name}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def image_host() -> Iterator[ImageHost]:
    """An image web server on loopback (``put(name, bytes) -> url``; /slow/NAME waits 1.5 s)."""
    host = ImageHost()
    yield host
    host.close()
