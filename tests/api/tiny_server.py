"""A tiny loopback HTTP(S) server answering fixed JSON, for answers the gallery never gives.

It plays the API document's own examples (e.g. ``has_more`` as the string "false") and
serves TLS with a throwaway CA, so the client is tested over a real socket.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

TOKEN = "tiny-token-0123456789"


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's name
        """Request lines carry the access token; this test server logs nothing."""


def answering(
    body: bytes,
    status: str = "200 OK",
    token_body: bytes | None = None,
    token_status: str = "200 OK",
) -> Any:
    """A WSGI app: the token endpoint answers ``token_body`` (by default it issues
    ``TOKEN``); every other POST gets ``status`` and ``body``."""
    issued = json.dumps({"access_token": TOKEN, "expires_in": 3600}).encode()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/oauth/2.0/token":
            answer_status, payload = token_status, issued if token_body is None else token_body
        else:
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            answer_status, payload = status, body
        start_response(
            answer_status,
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    return app


@contextmanager
def serving(app: Any, ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 on a free port; yields its base URL."""
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler, ssl_context=ssl_context
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if ssl_context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def make_ca_and_server_cert(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl CLI).

    Returns (ca.pem, server.pem, server.key).
    """

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ext = folder / "server.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    run(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=syncd test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    run(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


def serving_files(files: dict[str, bytes]) -> Any:
    """A WSGI app answering GET ``/<name>`` with ``files[name]`` (404 otherwise)."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = files.get(environ["PATH_INFO"].lstrip("/"))
        if body is None:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        start_response(
            "200 OK", [("Content-Type", "image/jpeg"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
