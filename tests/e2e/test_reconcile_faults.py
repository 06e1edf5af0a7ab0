"""`syncd reconcile` when the gallery answers with errors (docs/rules.md, Error classes)."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from ledgers import LedgerChoice
from sqlalchemy import select, update

from syncd.config import load_config
from syncd.gallery.server import GalleryServer
from syncd.ledger.models import Item
from syncd.ledger.settings import PAUSE_KEY, put_setting
from syncd.pauses import AccountPause, next_quota_reset
from syncd.plan.driver import PlanRules, plan_pending
from syncd.scan.scanner import scan_libraries

from .site import Site


def populate(site: Site, count: int) -> None:
    """``count`` distinct pictures in a few folders, plus a copy of the first."""
    for n in range(count):
        site.write(f"set{n % 3}/{n}.jpg", 1000 + n)
    shutil.copy(site.root / "set0" / "0.jpg", site.root / "copy-of-0.jpg")


def test_reconcile_converges_through_transient_errors_rate_limits_and_token_expiry(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    site = Site(tmp_path, gallery_server, qps=40.0)
    faults = gallery_server.faults
    faults.transient_rate = 0.2
    faults.qps_limit = 10.0
    faults.token_lifetime = 2.0
    populate(site, 30)
    first = site.syncd("reconcile")
    assert first.code == 0, first
    site.assert_mirrors_disk()
    # renames, a content change, a delete and a new copy, still under the same faults
    (site.root / "set1" / "1.jpg").rename(site.root / "set1" / "one.jpg")
    site.write("set2/2.jpg", 5000)
    (site.root / "set0" / "3.jpg").unlink()
    shutil.copy(site.root / "set1" / "4.jpg", site.root / "another.jpg")
    second = site.syncd("reconcile")
    assert second.code == 0, second
    site.assert_mirrors_disk()
    calls = site.server.call_counts()
    assert sum(calls.values()) > 32  # the faults did cost retries


def test_rebuilt_ledger_creates_no_duplicates_and_rights_every_brief(site: Site) -> None:
    populate(site, 8)
    assert site.syncd("reconcile").code == 0
    before = {item.cont_sign for item in site.items()}
    site.forget_ledger()
    (site.root / "set2" / "2.jpg").rename(site.root / "set2" / "renamed.jpg")
    site.server.reset_counts()
    result = site.syncd("reconcile")
    assert result.code == 0, result
    assert {item.cont_sign for item in site.items()} == before
    site.assert_mirrors_disk()
    calls = site.calls()
    # each add answered 216681 naming the item, adopted from the answer: no search
    assert calls == {"add": 8, "update": 8}
    assert "8 adopted" in result.out


def test_a_216681_that_names_no_item_is_adopted_through_a_search(site: Site) -> None:
    populate(site, 4)
    assert site.syncd("reconcile").code == 0
    before = {item.cont_sign for item in site.items()}
    site.forget_ledger()
    site.server.faults.anonymous_exists = True
    site.server.reset_counts()
    result = site.syncd("reconcile")
    assert result.code == 0, result
    assert {item.cont_sign for item in site.items()} == before
    site.assert_mirrors_disk()
    assert site.calls() == {"add": 4, "search": 4, "update": 4}


def test_uninitialized_gallery_exits_3_with_one_line_saying_what_to_do(site: Site) -> None:
    populate(site, 3)
    site.server.faults.not_initialized = frozenset({"same_hq"})
    result = site.syncd("reconcile")
    assert result.code == 3
    assert result.err.splitlines()[-1] == (
        "gallery same_hq is not initialized (error 216017): create the gallery in the "
        "Baidu console (应用详情页 申请建库)"
    )
    status = json.loads(site.syncd("status", "--json").out)
    assert status["fatal"]["same_hq"]["code"] == 216017
    site.server.faults.not_initialized = frozenset()
    fixed = site.syncd("reconcile")
    assert fixed.code == 0, fixed
    site.assert_mirrors_disk()
    assert json.loads(site.syncd("status", "--json").out)["fatal"] is None


def test_daily_quota_pauses_calls_until_midnight_beijing_time(site: Site) -> None:
    populate(site, 6)
    site.server.faults.daily_limit = 3
    result = site.syncd("reconcile")
    assert result.code == 3
    assert "daily request quota reached (error 17)" in result.err.splitlines()[-1]
    assert len(site.items()) == 3
    status = site.syncd("status", "--json")
    paused = json.loads(status.out)["paused"]
    until = datetime.fromisoformat(paused["until"])
    assert until == next_quota_reset(datetime.now(UTC))
    assert "paused: daily request quota reached" in site.syncd("status").out
    # while paused, another reconcile makes no call at all
    site.server.reset_counts()
    assert site.syncd("reconcile").code == 3
    assert site.calls() == {}


def test_calls_resume_by_themselves_once_the_pause_is_over(site: Site) -> None:
    populate(site, 4)
    site.server.faults.daily_limit = 2
    assert site.syncd("reconcile").code == 3
    site.server.faults.daily_limit = 0
    # the quota day ended: the stored pause lies in the past
    ledger = site.open_ledger()
    now = datetime.now(UTC)
    lapsed = AccountPause(17, "daily", now - timedelta(days=1), now - timedelta(seconds=1))
    with ledger.transaction() as session:
        put_setting(session, PAUSE_KEY, lapsed.to_json(), now.timestamp())
    ledger.close()
    result = site.syncd("reconcile")
    assert result.code == 0, result
    site.assert_mirrors_disk()
    assert json.loads(site.syncd("status", "--json").out)["paused"] is None


def test_retry_lifts_the_quota_pause_at_once(site: Site) -> None:
    populate(site, 4)
    site.server.faults.daily_limit = 2
    assert site.syncd("reconcile").code == 3
    site.server.faults.daily_limit = 0  # the quota was raised in the console
    lifted = site.syncd("retry")
    assert lifted.code == 0 and "lifted the quota pause" in lifted.out
    assert site.syncd("reconcile").code == 0
    site.assert_mirrors_disk()


def test_image_deleted_lately_is_added_again_after_the_deletion_latency(
    tmp_path: Path, ledger_choice: LedgerChoice
) -> None:
    server = GalleryServer(tmp_path / "slow-gallery", delete_latency=2.0)
    server.start()
    try:
        site = Site(tmp_path, server, delete_latency=2.0, ledger=ledger_choice)
        site.write("keep.jpg", 1)
        site.write("back.jpg", 2)
        assert site.syncd("reconcile").code == 0
        data = (site.root / "back.jpg").read_bytes()
        (site.root / "back.jpg").unlink()
        assert site.syncd("reconcile").code == 0
        (site.root / "back.jpg").write_bytes(data)
        server.reset_counts()
        result = site.syncd("reconcile")
        assert result.code == 0, result
        # refused while the gallery still held the deleted item (its 216681 names the item
        # syncd deleted: no search), then added after the window
        assert site.calls() == {"add": 2}
        site.assert_mirrors_disk()
    finally:
        server.stop()


def test_item_the_gallery_lost_is_added_again_on_the_next_change(site: Site) -> None:
    site.write("a.jpg", 1)
    assert site.syncd("reconcile").code == 0
    [item] = site.items()
    token = requests.post(
        f"{site.server.url}/oauth/2.0/token",
        params={"grant_type": "client_credentials", "client_id": "test-ak",
                "client_secret": "test-sk"},
        timeout=10,
    ).json()["access_token"]  # fmt: skip
    requests.post(
        f"{site.server.url}/rest/2.0/realtime_search/same_hq/delete",
        params={"access_token": token},
        data={"cont_sign": item.cont_sign},
        timeout=10,
    ).raise_for_status()
    site.server.reset_counts()
    (site.root / "a.jpg").rename(site.root / "b.jpg")
    assert site.syncd("reconcile").code == 0
    assert site.calls() == {"update": 1, "add": 1}
    site.assert_mirrors_disk()


def test_truncated_image_fails_with_its_reason_and_is_retried_only_on_request(
    site: Site,
) -> None:
    site.write("good.jpg", 1)
    whole = site.write("cut.jpg", 2).read_bytes()
    (site.root / "cut.jpg").write_bytes(whole[: len(whole) * 2 // 3])
    first = site.syncd("reconcile")
    assert first.code == 1
    assert "photos/cut.jpg" in first.out and "truncated" in first.out
    assert site.syncd("reconcile").code == 1
    assert attempts_of_failed(site) == [1]  # not tried again by itself
    retried = site.syncd("retry", str(site.root / "cut.jpg"))
    assert retried.code == 0 and "1 failed items" in retried.out
    assert site.syncd("reconcile").code == 1
    assert attempts_of_failed(site) == [1]  # tried again once, from zero
    assert [item.path for item in site.items()] == ["good.jpg"]


def attempts_of_failed(site: Site) -> list[int]:
    ledger = site.open_ledger(create=False)
    try:
        with ledger.transaction() as session:
            return list(session.scalars(select(Item.attempts).where(Item.state == "failed")))
    finally:
        ledger.close()


def test_retry_makes_items_waiting_on_a_backoff_due_at_once(site: Site) -> None:
    populate(site, 4)
    assert site.syncd("reconcile").code == 0
    (site.root / "set1" / "1.jpg").unlink()
    site.write("late/a.jpg", 901)
    site.write("late/b.jpg", 902)
    # the service scanned and planned the changes (a dry run would write nothing)
    config = load_config(site.config)
    ledger = site.open_ledger()
    scan_libraries(ledger, config)
    plan_pending(ledger, PlanRules.of(config), time.time())
    # the network was down: every intent failed for a while and backs off for minutes
    with ledger.transaction() as session:
        session.execute(
            update(Item)
            .where(Item.op.is_not(None))
            .values(attempts=8, error_code=0, error_message="ConnectionError: refused",
                    next_attempt_at=time.time() + 500)
        )  # fmt: skip
    ledger.close()
    site.server.reset_counts()
    waiting = site.syncd("reconcile")
    assert waiting.code == 1 and site.calls() == {}

    retried = site.syncd("retry")

    assert retried.code == 0
    assert "3 items waiting to retry after errors" in retried.out
    result = site.syncd("reconcile")
    assert result.code == 0, result
    site.assert_mirrors_disk()
