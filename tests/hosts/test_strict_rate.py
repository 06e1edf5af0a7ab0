"""The account's rate against the strictest limiter the service may have (at most
``api.qps`` calls in any sliding second, no burst): one host and three hosts sharing one
ledger draw no error 18, and an 18 caused by another client of the account is recovered.

Every add is one call when no 18 came: the gallery's call counter tells."""

from __future__ import annotations

import threading
import time

import requests

from syncd.api.baidu.galleries import GALLERIES
from syncd.gallery.faults import FaultConfig
from syncd.gallery.server import GalleryServer

from .cluster import GALLERY, Host, assert_mirrors, gallery_calls
from .conftest import MakeHost

QPS = 10.0


def fill(host: Host, count: int, seed: int) -> None:
    for n in range(count):
        host.write(f"d{n % 4}/img{n:03d}.jpg", seed + n)


def test_one_host_draws_no_error_18_from_a_strict_limiter(
    make_host: MakeHost, gallery_server: GalleryServer
) -> None:
    gallery_server.faults = FaultConfig(qps_limit=QPS)
    host = make_host("solo", qps=QPS, concurrency=4)
    fill(host, 40, 0)

    outcome = host.syncd("reconcile")

    assert outcome.code == 0, outcome
    assert gallery_calls(gallery_server) == {"add": 40}, "an add was refused and repeated"
    assert_mirrors(gallery_server, [host])


def test_three_hosts_on_one_ledger_draw_no_error_18_from_a_strict_limiter(
    make_host: MakeHost, gallery_server: GalleryServer
) -> None:
    gallery_server.faults = FaultConfig(qps_limit=QPS)
    hosts = [make_host(f"host-{n}", qps=QPS, concurrency=4) for n in range(3)]
    for n, host in enumerate(hosts):
        fill(host, 25, 1000 * n)

    runs = [host.popen("reconcile") for host in hosts]
    codes = [run.wait(timeout=120) for run in runs]

    assert codes == [0, 0, 0], [host.logged() for host in hosts]
    assert gallery_calls(gallery_server) == {"add": 75}, "an add was refused and repeated"
    assert_mirrors(gallery_server, hosts)


def test_an_18_caused_by_another_client_is_recovered_after_a_few_calls(
    make_host: MakeHost, gallery_server: GalleryServer
) -> None:
    gallery_server.faults = FaultConfig(qps_limit=QPS)
    host = make_host("solo", qps=QPS, concurrency=4)
    fill(host, 60, 0)
    search = f"{gallery_server.url}{GALLERIES[GALLERY].path('search')}"
    token = gallery_server.access_token()
    stop = threading.Event()
    refused: list[int] = []

    def other_application() -> None:
        # once syncd's calls flow, another client of the account takes the whole window
        # for half a second, as the company's own searches might
        while not stop.is_set() and gallery_calls(gallery_server).get("add", 0) < 10:
            time.sleep(0.02)
        end = time.monotonic() + 0.5
        while not stop.is_set() and time.monotonic() < end:
            answer = requests.post(
                search, params={"access_token": token}, data={"image": "x"}, timeout=10
            )
            refused.append(answer.json().get("error_code", 0) == 18)

    burner = threading.Thread(target=other_application)
    burner.start()
    try:
        outcome = host.syncd("reconcile")
    finally:
        stop.set()
        burner.join()

    assert outcome.code == 0, outcome
    assert any(refused), "the other client never filled the window"
    repeats = gallery_calls(gallery_server)["add"] - 60
    assert 1 <= repeats <= 8, f"{repeats} adds refused: the 18s went on"
    assert_mirrors(gallery_server, [host])
