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


class OtherApplication:
    """Another client of the account: once ``after`` adds reached the gallery, it sends
    searches as fast as it can for ``seconds``, taking the whole window, as the company's own
    searches might. ``refused``: whether each of its calls was answered 18."""

    def __init__(self, server: GalleryServer, after: int, seconds: float = 0.5) -> None:
        self.refused: list[bool] = []
        self._server = server
        self._after = after
        self._seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._burn)

    def _burn(self) -> None:
        search = f"{self._server.url}{GALLERIES[GALLERY].path('search')}"
        token = self._server.access_token()
        while not self._stop.is_set() and gallery_calls(self._server).get("add", 0) < self._after:
            time.sleep(0.02)
        end = time.monotonic() + self._seconds
        while not self._stop.is_set() and time.monotonic() < end:
            answer = requests.post(
                search, params={"access_token": token}, data={"image": "x"}, timeout=10
            )
            self.refused.append(answer.json().get("error_code", 0) == 18)

    def __enter__(self) -> OtherApplication:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_an_18_caused_by_another_client_is_recovered_after_a_few_calls(
    make_host: MakeHost, gallery_server: GalleryServer
) -> None:
    gallery_server.faults = FaultConfig(qps_limit=QPS)
    host = make_host("solo", qps=QPS, concurrency=4)
    fill(host, 60, 0)

    with OtherApplication(gallery_server, after=10) as other:
        outcome = host.syncd("reconcile")

    assert outcome.code == 0, outcome
    assert any(other.refused), "the other client never filled the window"
    repeats = gallery_calls(gallery_server)["add"] - 60
    assert 1 <= repeats <= 8, f"{repeats} adds refused: the 18s went on"
    assert_mirrors(gallery_server, [host])


def test_an_18_caused_by_another_client_slows_all_three_hosts_and_they_recover(
    make_host: MakeHost, gallery_server: GalleryServer
) -> None:
    gallery_server.faults = FaultConfig(qps_limit=QPS)
    hosts = [make_host(f"host-{n}", qps=QPS, concurrency=4) for n in range(3)]
    for n, host in enumerate(hosts):
        fill(host, 30, 1000 * n)

    with OtherApplication(gallery_server, after=20) as other:
        runs = [host.popen("reconcile") for host in hosts]
        codes = [run.wait(timeout=120) for run in runs]

    assert codes == [0, 0, 0], [host.logged() for host in hosts]
    assert any(other.refused), "the other client never filled the window"
    # the calls that met the other client's full window are refused and repeated, a few
    # of them, not one a call from then on; every host still syncs all it has
    repeats = gallery_calls(gallery_server)["add"] - 90
    assert 1 <= repeats <= 10, f"{repeats} adds refused: the 18s went on"
    assert_mirrors(gallery_server, hosts)
