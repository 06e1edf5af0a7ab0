"""The sync engine's own decisions, against the real local gallery over loopback and a real
SQLite ledger: how it claims and batches, backs off, adopts, and leaves no claim behind.

(The end-to-end runs of ``syncd reconcile`` are in tests/e2e; these drive ``SyncEngine``
directly, so each decision is seen with the calls it cost.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import GALLERY_API_KEY, GALLERY_SECRET_KEY
from ledger.world import World
from sqlalchemy import select

from syncd.api.baidu.client import ImageSearchClient
from syncd.config import Config
from syncd.gallery.faults import FaultConfig
from syncd.gallery.server import GalleryServer
from syncd.gates.rate import RateLimiter
from syncd.ledger.models import ITEM_SYNCED, Item
from syncd.sync.engine import SyncEngine, SyncReport


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, [{"name": "photos", "gallery": "similar"}], delete_grace=0.0)
    yield w
    w.close()


def sync(
    world: World, server: GalleryServer, qps: float = 1000.0, horizon: float = 2.0
) -> SyncReport:
    """One ``run_until_idle`` of a real engine against ``server``: it works until nothing
    is due within ``horizon`` seconds (the world's clock runs a little ahead of time)."""
    config = replace(world.config, api=replace(world.config.api, qps=qps, concurrency=4))
    client = ImageSearchClient(
        server.url, api_key=GALLERY_API_KEY, secret_key=GALLERY_SECRET_KEY, concurrency=4
    )
    try:
        engine = SyncEngine(world.ledger, client, config, limiter=RateLimiter(qps))
        return engine.run_until_idle(horizon=horizon)
    finally:
        client.close()


def run_service(world: World, config: Config, server: GalleryServer, seconds: float) -> None:
    """The engine as the service runs it (``start``), with ``config``, for ``seconds``."""
    client = ImageSearchClient(server.url, api_key=GALLERY_API_KEY, secret_key=GALLERY_SECRET_KEY)
    engine = SyncEngine(world.ledger, client, config, limiter=RateLimiter(config.api.qps))
    engine.start()
    try:
        time.sleep(seconds)
    finally:
        engine.stop(timeout=5.0)
        client.close()


def api_calls(server: GalleryServer) -> dict[str, int]:
    """Calls the gallery answered, by operation (the token call left out)."""
    counts: dict[str, int] = {}
    for (_gallery, op), n in server.call_counts().items():
        counts[op] = counts.get(op, 0) + n
    return counts


def items(world: World) -> list[Item]:
    with world.ledger.transaction() as session:
        return list(session.scalars(select(Item)))


def test_each_new_image_costs_one_add_and_no_claim_is_left(
    world: World, gallery_server: GalleryServer
) -> None:
    for n in range(6):
        world.write(f"{n}.jpg", n)
    world.scan()
    report = sync(world, gallery_server)
    assert (report.added, report.failed, report.pending) == (6, 0, 0)
    assert api_calls(gallery_server) == {"add": 6}
    rows = items(world)
    assert all(i.state == ITEM_SYNCED and i.cont_sign for i in rows)
    assert all(i.claim_owner is None and i.claimed_at is None for i in rows)


def test_deletes_are_claimed_together_and_sent_in_one_call(
    world: World, gallery_server: GalleryServer
) -> None:
    for n in range(31):  # one stays: an empty root deletes nothing (docs/rules.md, Mass deletes)
        world.write(f"{n}.jpg", n)
    world.scan()
    sync(world, gallery_server)
    for n in range(30):
        world.remove(f"{n}.jpg")
    world.scan(after=1)
    gallery_server.reset_counts()
    report = sync(world, gallery_server)
    assert report.deleted == 30
    assert api_calls(gallery_server) == {"delete": 1}
    assert len(items(world)) == 1


def test_a_transient_error_backs_the_item_off_and_the_report_says_so(
    world: World, gallery_server: GalleryServer
) -> None:
    world.write("a.jpg", 1)
    world.scan()
    gallery_server.faults = FaultConfig(transient_rate=1.0)
    report = sync(world, gallery_server, horizon=0.0)
    assert (report.added, report.pending, report.retrying) == (0, 1, 1)
    [item] = items(world)
    assert item.attempts >= 1 and item.error_code is not None
    assert item.next_attempt_at > world.clock and item.claim_owner is None
    gallery_server.faults = FaultConfig()
    with world.ledger.transaction() as session:
        session.get(Item, item.id).next_attempt_at = 0.0  # type: ignore[union-attr]
    assert sync(world, gallery_server).added == 1


def test_an_image_the_gallery_already_holds_is_adopted_from_the_answer(
    world: World, gallery_server: GalleryServer
) -> None:
    world.write("a.jpg", 1)
    world.scan()
    sync(world, gallery_server)
    [before] = items(world)
    # a lost ledger: the same file is new to a fresh one
    world.ledger.close()
    for path in Path(world.config.ledger.path).parent.glob("ledger.db*"):
        if path.is_file():
            path.unlink()
    fresh = World(world.tmp_path, [{"name": "photos", "gallery": "similar"}], delete_grace=0.0)
    try:
        fresh.scan()
        gallery_server.reset_counts()
        report = sync(fresh, gallery_server)
        assert (report.adopted, report.updated) == (1, 1)
        # the 216681 answer named the item: no search
        assert api_calls(gallery_server) == {"add": 1, "update": 1}
        [after] = items(fresh)
        assert after.cont_sign == before.cont_sign and after.state == ITEM_SYNCED
    finally:
        fresh.close()


def test_idle_workers_look_at_the_ledger_one_at_a_time(
    world: World, gallery_server: GalleryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service with nothing to send wakes now and then to look at the ledger; one worker
    asks it then, not every worker the same two questions (on a ledger several hosts share,
    a host with nothing to send walks the other hosts' whole backlog to answer them)."""
    from sqlalchemy import event

    import syncd.sync.engine as engine_module

    idle_wait = 0.2
    monkeypatch.setattr(engine_module, "MAX_IDLE_WAIT", idle_wait)
    looks: list[float] = []

    @event.listens_for(world.ledger.engine, "before_cursor_execute")
    def _count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "ORDER BY items.next_attempt_at" in statement:  # next_due_at's question
            looks.append(time.monotonic())

    config = replace(world.config, api=replace(world.config.api, qps=1000.0, concurrency=4))
    began = time.monotonic()
    run_service(world, config, gallery_server, 3.0)
    workers = 4 + engine_module.SPARE_WORKERS
    elapsed = time.monotonic() - began
    # every worker looks once at the start; after that one look per wake at most (each
    # worker on its own would look `workers` times per wake: about 6 × 15 in 3 s)
    wakes = elapsed / idle_wait
    assert workers <= len(looks) <= workers + wakes + 2, (len(looks), workers, wakes)
    later = [t for t in looks if t - began > 1.0]
    assert later, "the idle service stopped looking at the ledger"
    assert len(later) <= (elapsed - 1.0) / idle_wait + 2, (len(later), elapsed)


def test_a_host_with_nothing_to_send_stops_walking_the_other_hosts_backlog(
    tmp_path: Path, gallery_server: GalleryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hosts on one ledger: h2's library is all synced, h1 has a backlog of adds. h2's
    idle service walks the queue once (its claim comes back short), then asks the kept
    counts at each wake instead of walking h1's backlog again; it sends nothing of h1's."""
    from sqlalchemy import event, update

    import syncd.sync.engine as engine_module
    from syncd.config import HostConfig
    from syncd.ledger.models import ITEM_PENDING, Library

    world = World(tmp_path, [{"name": "one"}, {"name": "two"}], delete_grace=0.0)
    try:
        for n in range(4):
            world.write(f"{n}.jpg", n, library="two")
        world.scan()
        world.sync()
        with world.ledger.transaction() as session:
            for name, host in (("one", "h1"), ("two", "h2")):
                session.execute(update(Library).where(Library.name == name).values(host=host))
        for n in range(20):
            world.write(f"{n}.jpg", 100 + n, library="one")
        world.scan()
        idle_wait = 0.2
        monkeypatch.setattr(engine_module, "MAX_IDLE_WAIT", idle_wait)
        walks: list[float] = []

        @event.listens_for(world.ledger.engine, "before_cursor_execute")
        def _count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            if "ORDER BY items.lane" in statement:  # a claim's walk of the queue
                walks.append(time.monotonic())

        two = tuple(lib for lib in world.config.libraries if lib.name == "two")
        config = replace(
            world.config,
            host=HostConfig("h2"),
            libraries=two,
            api=replace(world.config.api, qps=1000.0, concurrency=1),
        )
        began = time.monotonic()
        run_service(world, config, gallery_server, 2.5)
        wakes = (time.monotonic() - began) / idle_wait
        # the first claim walks both lanes and comes back empty; later ones ask the counts
        assert 1 <= len(walks) <= 4, (len(walks), wakes)
        assert api_calls(gallery_server) == {}  # none of h1's adds
        pending = [i for i in items(world) if i.state == ITEM_PENDING]
        assert len(pending) == 20 and all(i.claim_owner is None for i in pending)
    finally:
        world.close()
