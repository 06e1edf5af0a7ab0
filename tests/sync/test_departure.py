"""A call's departure is when its request leaves, not when it got its slot: a real engine and
a real client against the local gallery's strict limiter (at most ``QPS`` calls in any
sliding second, no burst), with some requests slow to build.

A request that takes long to build (a large image's base64 and form encoding on a loaded
machine) is made slow here in a controlled way: every ``SLOW_EVERY``-th form encoding takes
``SLOW_SECONDS`` longer. A call that waited for its slot before being built would leave that
much after its slot; the slot's neighbours ten calls on would then meet it in one of the
server's windows (error 18). The engine waits for its slot at the wire, so none does.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import GALLERY_API_KEY, GALLERY_SECRET_KEY
from ledger.world import World

from syncd.api.baidu import client as client_module
from syncd.api.baidu.client import ImageSearchClient
from syncd.api.baidu.params import CallParams
from syncd.gallery.faults import FaultConfig
from syncd.gallery.server import GalleryServer
from syncd.gates.rate import RateLimiter
from syncd.gates.shared_rate import SharedRateLimiter
from syncd.ledger.schema import Ledger
from syncd.sync.engine import SyncEngine

from .test_engine import api_calls

QPS = 10.0
IMAGES = 36
#: every this many form encodings, one is slow: its call would leave late, the next ten on time
SLOW_EVERY = 12
#: well beyond the time a call may take to reach the server after it left
#: (syncd.gates.rate.GUARD_SECONDS), well within the server's one-second window
SLOW_SECONDS = 0.3

MakeLimiter = Callable[[Ledger], RateLimiter]
LIMITERS: dict[str, MakeLimiter] = {
    "one process": lambda _ledger: RateLimiter(QPS),
    "shared in the ledger": lambda ledger: SharedRateLimiter(ledger, QPS, host="solo"),
}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, [{"name": "photos", "gallery": "similar"}], delete_grace=0.0)
    yield w
    w.close()


@pytest.fixture
def slow_encoding(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every ``SLOW_EVERY``-th form body the client encodes takes ``SLOW_SECONDS`` more;
    the list holds how many bodies were slow."""
    encode = client_module.encode_form
    count = itertools.count()
    slowed: list[int] = []

    def slow_encode(params: CallParams) -> bytes:
        if next(count) % SLOW_EVERY == 0:
            slowed.append(1)
            time.sleep(SLOW_SECONDS)
        return encode(params)

    monkeypatch.setattr(client_module, "encode_form", slow_encode)
    return slowed


@pytest.mark.parametrize("limiter", list(LIMITERS), ids=list(LIMITERS))
def test_a_request_slow_to_build_leaves_no_error_18_from_a_strict_limiter(
    world: World, gallery_server: GalleryServer, slow_encoding: list[int], limiter: str
) -> None:
    gallery_server.faults = FaultConfig(qps_limit=QPS)
    for n in range(IMAGES):
        world.write(f"{n}.jpg", n)
    world.scan()
    config = replace(world.config, api=replace(world.config.api, qps=QPS, concurrency=4))
    client = ImageSearchClient(
        gallery_server.url, api_key=GALLERY_API_KEY, secret_key=GALLERY_SECRET_KEY, concurrency=4
    )
    try:
        engine = SyncEngine(
            world.ledger, client, config, limiter=LIMITERS[limiter](world.ledger)
        )  # fmt: skip
        report = engine.run_until_idle(horizon=2.0)
    finally:
        client.close()

    assert len(slow_encoding) >= IMAGES // SLOW_EVERY, "no request was slow to build"
    refused = {result: n for (_op, result), n in report.calls.items() if result != "ok"}
    assert refused == {}, "calls were refused (RateError: error 18)"
    assert api_calls(gallery_server) == {"add": IMAGES}, "an add was refused and repeated"
    assert (report.added, report.failed, report.pending) == (IMAGES, 0, 0)
