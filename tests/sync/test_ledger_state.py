"""The engine's durable state in a real ledger: group commits, pauses and stops, the lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from syncd.errors import DailyQuotaError, GalleryNotCreatedError, TotalQuotaError
from syncd.gates.host_lock import LedgerBusy, SyncLock
from syncd.gates.pause import AccountState
from syncd.ledger.schema import Ledger, open_ledger
from syncd.ledger.settings import PAUSE_KEY, delete_setting, get_setting, put_setting
from syncd.sync.recorder import Record, Recorder


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = open_ledger(tmp_path / "ledger.db")
    try:
        yield opened
    finally:
        opened.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def setting(ledger: Ledger, key: str) -> str | None:
    with ledger.transaction() as session:
        return get_setting(session, key)


def test_one_bad_answer_does_not_lose_the_others_of_its_group(ledger: Ledger) -> None:
    commits: list[int] = []
    recorder = Recorder(ledger, on_commit=lambda: commits.append(1))

    def put(key: str) -> Record:
        def record(session: Session) -> None:
            put_setting(session, key, "1", 0.0)

        return record

    def broken(session: Session) -> None:
        raise RuntimeError("a bug while recording")

    def first(session: Session) -> None:
        # answers arriving while a commit is under way wait and go out as one group
        for record in (put("b"), broken, put("c")):
            recorder.submit(record)
        put_setting(session, "a", "1", 0.0)

    recorder.submit(first)
    assert [setting(ledger, k) for k in "abc"] == ["1", "1", "1"]
    assert len(commits) == 2


def test_quota_pause_is_stored_and_seen_by_the_next_process(ledger: Ledger) -> None:
    clock = Clock()
    first = AccountState(ledger, clock)
    pause = first.on_quota(DailyQuotaError(17, "Open api daily request limit reached"))
    assert first.open_galleries(["same_hq"]) == []
    later = AccountState(ledger, clock)
    later.load()
    assert later.pause() == pause
    assert later.next_change() == pause.until.timestamp()


def test_lapsed_pause_is_cleared_by_the_first_call_that_works(ledger: Ledger) -> None:
    clock = Clock()
    state = AccountState(ledger, clock)
    pause = state.on_quota(TotalQuotaError(19, "Open api total request limit reached"))
    clock.now = pause.until.timestamp() + 1
    assert state.open_galleries(["similar"]) == ["similar"]
    state.on_success("similar")
    assert setting(ledger, PAUSE_KEY) is None


def test_pause_lifted_by_another_process_is_noticed(ledger: Ledger) -> None:
    clock = Clock()
    state = AccountState(ledger, clock)
    state.on_quota(DailyQuotaError(17, "daily"))
    with ledger.transaction() as session:
        delete_setting(session, PAUSE_KEY)
    clock.now += 60
    state.refresh()
    assert state.pause() is None


def test_stopped_gallery_is_retried_after_a_few_minutes_in_the_service_only(
    ledger: Ledger,
) -> None:
    clock = Clock()
    service = AccountState(ledger, clock, retry_stops=True)
    one_shot = AccountState(ledger, clock, retry_stops=False)
    for state in (service, one_shot):
        state.on_setup_error("product", GalleryNotCreatedError(216017, "not initialized"))
        assert state.open_galleries(["product", "similar"]) == ["similar"]
    clock.now += 600
    assert service.open_galleries(["product"]) == ["product"]
    assert one_shot.open_galleries(["product"]) == []


def test_second_syncing_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    busy = r"another syncd process \(pid \d+\)"
    with SyncLock(path), pytest.raises(LedgerBusy, match=busy):
        SyncLock(path).acquire()
    with SyncLock(path) as again:
        assert again.held
