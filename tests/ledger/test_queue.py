"""The ledger as the engine's durable queue: claims, outcomes, backoff, batches, adoption."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledgers import LedgerChoice
from sqlalchemy import select

from ledger.world import Call, World
from syncd.ledger.items import item_for_cont_sign
from syncd.ledger.models import Item, Tombstone
from syncd.ledger.queue import (
    claim_due_intents,
    merge_items,
    record_added,
    record_deleted,
    record_failure,
    release_claims,
    retry_failed,
)
from syncd.ledger.report import ledger_status
from syncd.ledger.schema import open_ledger


@pytest.fixture
def world(tmp_path: Path, ledger_choice: LedgerChoice) -> Iterator[World]:
    w = World(tmp_path, ledger=ledger_choice, delete_grace=1.0)
    yield w
    w.close()


def _adds(world: World, count: int) -> None:
    for n in range(count):
        world.write(f"{n}.jpg", n)
    world.scan()


def test_an_intent_is_claimed_by_one_worker_only(world: World) -> None:
    _adds(world, 4)
    with world.ledger.transaction() as session:
        first = claim_due_intents(session, "w1", world.clock, limit=3)
        second = claim_due_intents(session, "w2", world.clock, limit=3)
    assert len(first) == 3 and len(second) == 1
    assert not {i.item_id for i in first} & {i.item_id for i in second}
    assert all(i.op == "add" and i.relpath and i.library == "photos" for i in first)


def test_workers_claiming_at_once_never_share_an_intent(world: World) -> None:
    _adds(world, 40)
    claimed: dict[str, list[int]] = {}

    def worker(name: str) -> None:
        ledger = open_ledger(world.config.ledger)  # its own connections
        got: list[int] = []
        try:
            while True:
                with ledger.transaction() as session:
                    batch = claim_due_intents(session, name, world.clock, limit=2)
                if not batch:
                    break
                got += [i.item_id for i in batch]
        finally:
            ledger.close()
        claimed[name] = got

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for ids in claimed.values() for i in ids]
    assert len(everything) == 40 and len(set(everything)) == 40


def test_a_claim_abandoned_by_a_dead_worker_is_taken_again(world: World) -> None:
    _adds(world, 1)
    with world.ledger.transaction() as session:
        assert claim_due_intents(session, "dead", world.clock)
        assert claim_due_intents(session, "w2", world.clock + 60, stale_after=600) == []
        (again,) = claim_due_intents(session, "w2", world.clock + 601, stale_after=600)
    assert again.op == "add"


def test_released_claims_are_due_again(world: World) -> None:
    _adds(world, 2)
    with world.ledger.transaction() as session:
        assert len(claim_due_intents(session, "w1", world.clock)) == 2
        release_claims(session, "w1")
        assert len(claim_due_intents(session, "w2", world.clock)) == 2


def test_a_retryable_failure_waits_for_its_backoff(world: World) -> None:
    _adds(world, 1)
    with world.ledger.transaction() as session:
        (intent,) = claim_due_intents(session, "w1", world.clock)
        record_failure(session, intent.item_id, "w1", 2, "busy", world.clock, world.clock + 8)
        assert claim_due_intents(session, "w1", world.clock + 7) == []
        (again,) = claim_due_intents(session, "w1", world.clock + 8)
    assert again.attempts == 1


def test_a_bad_image_stays_failed_until_retried(world: World) -> None:
    _adds(world, 1)
    with world.ledger.transaction() as session:
        (intent,) = claim_due_intents(session, "w1", world.clock)
        record_failure(
            session, intent.item_id, "w1", 216201, "image format error", world.clock, None
        )
        assert claim_due_intents(session, "w1", world.clock + 10_000) == []
        status = ledger_status(session, [("photos", "similar")], world.clock)
        assert status.libraries[0].failed == 1
    world.scan(after=1)  # an unchanged file does not bring it back
    with world.ledger.transaction() as session:
        assert claim_due_intents(session, "w1", world.clock + 10_000) == []
        retry_failed(session, [intent.item_id], world.clock)
        assert len(claim_due_intents(session, "w1", world.clock)) == 1


def test_deletes_are_claimed_in_batches_and_leave_tombstones(world: World) -> None:
    _adds(world, 5)
    world.write("keep.jpg", 99)
    world.scan()
    world.sync()
    for n in range(5):
        world.remove(f"{n}.jpg")
    world.scan(after=1)
    world.scan(after=2)
    with world.ledger.transaction() as session:
        batch = claim_due_intents(session, "w1", world.clock, ops=("delete",), limit=1000)
        assert len(batch) == 5 and all(i.cont_sign for i in batch)
        record_deleted(session, [i.item_id for i in batch], "w1", world.clock)
        signs = set(session.scalars(select(Tombstone.cont_sign)))
    assert signs == {i.cont_sign for i in batch}
    assert len(world.items()) == 1


def test_an_adopted_item_takes_the_contents_of_the_new_one(world: World) -> None:
    world.write("old.jpg", 1)
    world.scan()
    world.sync()
    (sign,) = world.gallery()
    world.write("same-picture-other-bytes.jpg", 2)
    world.scan(after=1)
    with world.ledger.transaction() as session:
        (intent,) = claim_due_intents(session, "w1", world.clock)
        # the gallery answered 216681 and a search found the item of old.jpg
        existing = item_for_cont_sign(session, "similar", sign)
        assert existing is not None
        merge_items(session, intent.item_id, existing)
    world.scan(after=1)
    assert world.sync() == []  # old.jpg is still the oldest copy: the brief stays
    (item,) = world.items()
    world.remove("old.jpg")
    world.scan(after=1)
    world.scan(after=2)
    assert world.sync() == [Call("update", "same-picture-other-bytes.jpg", "similar")]
    assert world.items()[0].id == item.id


def test_an_item_removed_while_its_add_was_in_flight_is_deleted_after(world: World) -> None:
    _adds(world, 1)
    world.write("other.jpg", 50)
    world.scan()
    with world.ledger.transaction() as session:
        intents = claim_due_intents(session, "w1", world.clock)
    world.remove("0.jpg")
    world.scan(after=1)
    world.scan(after=2)
    with world.ledger.transaction() as session:
        for intent in intents:
            record_added(
                session, intent.item_id, "w1", f"s{intent.item_id}", intent.brief, (), world.clock
            )
    assert world.sync() == [Call("delete", "0.jpg", "similar")]
    with world.ledger.transaction() as session:
        assert session.scalar(select(Item.cont_sign)) is not None
