"""The daily budget (``api.daily_budget``): never more calls in a quota day than the
operator allows; the pause said by reconcile, status and /metrics; the rest sent the
next day (docs/rules.md, Daily budget)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from conftest import GALLERY_API_KEY, GALLERY_SECRET_KEY
from daemon.conftest import Daemon, Library, free_port, metrics_text, write_image
from ledger.world import World
from ledgers import LedgerChoice

from e2e.site import Site
from syncd.api.baidu.client import ImageSearchClient
from syncd.gallery.server import GalleryServer
from syncd.gates.rate import RateLimiter
from syncd.pauses import next_quota_reset
from syncd.sync.engine import SyncEngine, SyncReport


def test_a_budget_of_25_sends_25_of_40_adds_and_says_why(
    tmp_path: Path, gallery_server: GalleryServer, ledger_choice: LedgerChoice
) -> None:
    site = Site(tmp_path, gallery_server, daily_budget=25, ledger=ledger_choice)
    for n in range(40):
        site.write(f"{n:02}.jpg", n)
    result = site.syncd("reconcile")
    assert result.code == 1, result
    assert "daily budget of 25 calls spent (api.daily_budget)" in result.err.splitlines()[-1]
    assert site.calls() == {"add": 25}
    status = json.loads(site.syncd("status", "--json").out)
    assert status["budget"]["used"] == 25 and status["budget"]["limit"] == 25
    assert status["paused"]["budget"] is True
    assert datetime.fromisoformat(status["budget"]["resets_at"]) > datetime.now(UTC)
    assert "budget: 25 of 25 calls used today" in site.syncd("status").out
    # the same day, another run sends nothing more
    assert site.syncd("reconcile").code == 1
    assert site.calls() == {"add": 25}


def _sync(world: World, server: GalleryServer, at: float) -> SyncReport:
    config = replace(world.config, api=replace(world.config.api, qps=1000.0, daily_budget=25))
    client = ImageSearchClient(server.url, api_key=GALLERY_API_KEY, secret_key=GALLERY_SECRET_KEY)
    try:
        engine = SyncEngine(
            world.ledger, client, config, limiter=RateLimiter(1000.0), clock=lambda: at
        )
        return engine.run_until_idle(horizon=1.0)
    finally:
        client.close()


def test_after_the_quota_day_ends_the_rest_is_sent(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    world = World(tmp_path)
    try:
        for n in range(40):
            world.write(f"{n:02}.jpg", n)
        world.scan()
        today = world.clock + 1.0
        first = _sync(world, gallery_server, today)
        assert first.added == 25 and first.pause is not None and first.pause.budget
        tomorrow = next_quota_reset(datetime.fromtimestamp(today, UTC)).timestamp() + 1.0
        second = _sync(world, gallery_server, tomorrow)
        assert (second.added, second.pending, second.pause) == (15, 0, None)
        calls = {op: n for (_g, op), n in gallery_server.call_counts().items()}
        assert calls == {"add": 40}
    finally:
        world.close()


def test_metrics_say_the_budget_is_spent(tmp_path: Path, gallery_server: GalleryServer) -> None:
    port = free_port()
    daemon = Daemon(tmp_path, gallery_server, [Library("photos", tmp_path / "photos")])
    daemon.metrics_listen = f"127.0.0.1:{port}"
    daemon.write_config()
    text = daemon.config_path.read_text().replace("timeout = 10.0", "timeout = 10.0\ndaily_budget = 3")
    daemon.config_path.write_text(text)
    for n in range(5):
        write_image(daemon.libraries[0].root / f"{n}.jpg", 60 + n)
    daemon.start()
    try:
        daemon.wait_until(lambda: "syncd_budget_paused 1.0" in metrics_text(port))
        text = metrics_text(port)
        assert "syncd_budget_used_calls 3.0" in text
        assert "syncd_budget_limit_calls 3.0" in text
        calls = {op: n for (_g, op), n in gallery_server.call_counts().items()}
        assert calls == {"add": 3}
    finally:
        assert daemon.stop() == 0
