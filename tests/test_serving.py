"""syncd.serving: the waitress server of the local gallery, the console and /metrics.

Its queue-depth warning ("Task queue depth is 1", whenever a request waits for a free
thread) once reached `syncd check`'s stderr on a busy machine; it is logged at DEBUG now.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator

import pytest
import requests

from syncd.serving import Refused, WaitressServer

#: a process that logs to stderr as the CLI does (``basicConfig`` at the level given), makes
#: a request wait for the server's only thread, then says "waited" once it was queued
QUEUED_REQUEST = r"""
import logging, sys, threading, time, urllib.request
from syncd.serving import WaitressServer

logging.basicConfig(level=sys.argv[1], stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
inside, release = threading.Event(), threading.Event()

def app(environ, start_response):
    inside.set()
    release.wait(60)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

server = WaitressServer(app, host="127.0.0.1", port=0, name="queued", threads=1,
                        connection_limit=10, channel_timeout=30, cleanup_interval=5,
                        max_request_body_size=1024)
server.start()
get = lambda: urllib.request.urlopen(server.url + "/", timeout=60).read()
first = threading.Thread(target=get)
first.start()
inside.wait(60)
second = threading.Thread(target=get)
second.start()
for _ in range(6000):  # the second request waits for the only thread
    if server.waiting:
        break
    time.sleep(0.01)
waited = server.waiting
release.set()
first.join()
second.join()
server.stop()
print("waited" if waited else "never queued")
"""


def run_queued(level: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", QUEUED_REQUEST, level],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done
    assert done.stdout == "waited\n", done
    return done


def test_a_request_waiting_for_a_thread_leaves_the_operators_stderr_empty() -> None:
    done = run_queued("WARNING")
    assert done.stderr == ""


def test_the_queue_depth_is_still_logged_at_debug() -> None:
    done = run_queued("DEBUG")
    assert "DEBUG waitress.queue: Task queue depth is 1" in done.stderr.splitlines(), done.stderr
    assert "WARNING" not in done.stderr


def answer_ok(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def serve(refusal: Callable[[Refused], tuple[list[tuple[str, str]], bytes]] | None = None) -> WaitressServer:
    return WaitressServer(
        answer_ok,
        host="127.0.0.1",
        port=0,
        name="syncd-test",
        threads=2,
        connection_limit=10,
        channel_timeout=30,
        cleanup_interval=5,
        max_request_body_size=1024,
        refusal=refusal,
    )


@pytest.fixture
def refused() -> Iterator[tuple[WaitressServer, list[Refused]]]:
    seen: list[Refused] = []

    def refusal(request: Refused) -> tuple[list[tuple[str, str]], bytes]:
        seen.append(request)
        return [("Content-Type", "application/json"), ("X-Refused", "yes")], b'{"too": "large"}'

    server = serve(refusal)
    server.start()
    try:
        yield server, seen
    finally:
        server.stop()


def test_a_body_over_the_limit_is_answered_by_the_servers_refusal(
    refused: tuple[WaitressServer, list[Refused]],
) -> None:
    server, seen = refused
    answer = requests.post(f"{server.url}/upload", data=b"x" * 4096, timeout=30)
    assert answer.status_code == 413
    assert answer.content == b'{"too": "large"}'
    assert answer.headers["X-Refused"] == "yes"
    assert answer.headers["Server"] == "syncd-test"
    assert answer.headers["Connection"] == "close"
    assert [(r.code, r.path) for r in seen] == [(413, "/upload")]
    # a request within the limit reaches the app
    assert requests.post(f"{server.url}/upload", data=b"x" * 10, timeout=30).text == "ok"


def test_without_a_refusal_waitress_answers_in_its_own_words() -> None:
    server = serve()
    server.start()
    try:
        answer = requests.post(f"{server.url}/", data=b"x" * 4096, timeout=30)
    finally:
        server.stop()
    assert answer.status_code == 413
    assert "Request Entity Too Large" in answer.text


def test_a_server_listens_at_once_and_stop_gives_the_address_back() -> None:
    server = serve()  # bound, never started
    with socket.socket() as taken, pytest.raises(OSError):
        taken.bind(("127.0.0.1", server.port))
    server.stop()
    server.stop()  # again: nothing left to do
    with socket.socket() as free:
        free.bind(("127.0.0.1", server.port))
    with pytest.raises(RuntimeError):
        server.start()


def test_an_address_in_use_is_an_oserror_before_anything_serves() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with pytest.raises(OSError):
            WaitressServer(
                answer_ok,
                host="127.0.0.1",
                port=holder.getsockname()[1],
                name="syncd-test",
                threads=1,
                connection_limit=10,
                channel_timeout=30,
                cleanup_interval=5,
                max_request_body_size=1024,
            )
