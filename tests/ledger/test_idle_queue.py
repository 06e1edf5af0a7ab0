"""What an idle engine asks the queue (when the next intent is due, when the first lease of
another host runs out) and where a claim looks, on a mixed queue, on SQLite and PostgreSQL.

The answers are checked against the rules written out in Python over the rows themselves:
pending with an op, not claimed (or, for leases, claimed by another host), not waiting for a
pending add, of the galleries asked, and with a host only what it can send (an update or
delete, or an add of which one of its libraries holds a live, sendable copy).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledgers import LedgerChoice
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ledger.world import World
from syncd.ledger.counters import rebuild_counts
from syncd.ledger.models import (
    ITEM_FAILED,
    ITEM_PENDING,
    ITEM_SYNCED,
    VERDICT_OK,
    Content,
    File,
    Item,
    Library,
)
from syncd.ledger.queue import claim_due_intents, next_due_at, next_lease_end
from syncd.paths.states import FILE_LIVE

LIBRARIES = [
    {"name": "one", "gallery": "similar"},
    {"name": "two", "gallery": "similar"},
    {"name": "shop", "gallery": "product"},
]
HOSTS = {"one": "h1", "two": "h2", "shop": "h1"}
GALLERY_SETS = (["similar"], ["product"], ["similar", "product"])
STALE_AFTER = 30.0


@pytest.fixture
def world(tmp_path: Path, ledger_choice: LedgerChoice) -> Iterator[World]:
    """Twelve images in "one", six of them copied in "two", four more only in "two", five
    in "shop"; each library on its host (h1, h2, h1)."""
    w = World(tmp_path, LIBRARIES, ledger=ledger_choice)
    try:
        for n in range(12):
            w.write(f"{n}.jpg", n, library="one")
            if n % 2:
                w.write(f"copy{n}.jpg", n, library="two")
        for n in range(4):
            w.write(f"own{n}.jpg", 100 + n, library="two")
        for n in range(5):
            w.write(f"{n}.jpg", 200 + n, library="shop")
        w.scan()
        with w.ledger.transaction() as session:
            for name, host in HOSTS.items():
                session.execute(update(Library).where(Library.name == name).values(host=host))
        yield w
    finally:
        w.close()


def _shuffle_queue(session: Session, rng: random.Random, now: float) -> None:
    """Give every item a random state, op, due time, lease and wait."""
    items = list(session.scalars(select(Item).order_by(Item.id)))
    for item in items:
        item.state = rng.choice([ITEM_PENDING] * 4 + [ITEM_SYNCED, ITEM_FAILED])
        item.op = (
            None if item.state == ITEM_SYNCED else rng.choice(["add", "add", "update", "delete"])
        )
        item.next_attempt_at = now + rng.choice([-50.0, -5.0, 0.0, 7.0, 60.0, 3600.0])
        lease = rng.choice(["none", "none", "h1", "h2", "h2-stale", "h3"])
        if lease == "none":
            item.claim_owner, item.claimed_at = None, None
        else:
            item.claim_owner = f"{lease.split('-')[0]}:1:x"
            item.claimed_at = now - (STALE_AFTER + 5 if lease.endswith("stale") else rng.random())
        other = rng.choice(items)
        item.wait_for_item_id = other.id if rng.random() < 0.3 and other.id != item.id else None


def _can_send(session: Session, item: Item, host: str) -> bool:
    if item.op != "add":
        return True
    hashes = set(session.scalars(select(Content.content_hash).where(Content.item_id == item.id)))
    copies = session.execute(
        select(File, Library)
        .join(Library, File.library_id == Library.id)
        .where(File.content_hash.in_(hashes), Library.gallery == item.gallery)
    ).all()
    return any(
        library.host == host and file.state == FILE_LIVE and file.verdict == VERDICT_OK
        for file, library in copies
    )


def _waiting(session: Session, item: Item) -> bool:
    if item.wait_for_item_id is None:
        return False
    blocker = session.get(Item, item.wait_for_item_id)
    return blocker is not None and blocker.state == ITEM_PENDING and blocker.op is not None


def _expected(
    session: Session, galleries: list[str], host: str | None, leases: bool
) -> float | None:
    """The first due time (or, with ``leases``, the first lease's end) by the rules."""
    found: list[float] = []
    for item in session.scalars(select(Item)):
        if item.state != ITEM_PENDING or item.op is None or item.gallery not in galleries:
            continue
        if _waiting(session, item) or (host is not None and not _can_send(session, item, host)):
            continue
        owner, claimed_at = item.claim_owner, item.claimed_at
        if not leases and owner is None:
            found.append(item.next_attempt_at)
        elif leases and owner and claimed_at is not None and not owner.startswith(f"{host}:"):
            found.append(claimed_at + STALE_AFTER)
    return min(found, default=None)


def test_the_idle_questions_answer_as_the_rules_say_on_a_mixed_queue(world: World) -> None:
    asked = answered = 0
    for seed in range(6):
        rng = random.Random(seed)
        with world.ledger.transaction() as session:
            _shuffle_queue(session, rng, world.clock)
            # the shuffle writes the rows directly: the counts the writes keep start over
            session.flush()
            rebuild_counts(session.connection())
        with world.ledger.transaction() as session:
            for galleries in GALLERY_SETS:
                for host in (None, "h1", "h2", "h3"):
                    expected = _expected(session, galleries, host, leases=False)
                    got = next_due_at(session, galleries, host)
                    assert got == expected, (seed, galleries, host)
                    asked += 1
                    answered += got is not None
                    if host is None:
                        continue
                    expected = _expected(session, galleries, host, leases=True)
                    got = next_lease_end(session, galleries, host, STALE_AFTER)
                    assert got == expected, (seed, galleries, host, "lease")
                    asked += 1
                    answered += got is not None
    # the queue was mixed enough that most questions had an answer, and some none
    assert asked > answered > asked // 2


def test_no_gallery_asked_has_nothing_due(world: World) -> None:
    with world.ledger.transaction() as session:
        assert next_due_at(session, [], "h1") is None
        assert next_lease_end(session, [], "h1") is None


def test_a_claim_looks_past_a_head_of_the_queue_it_cannot_send(world: World) -> None:
    """Host h2's adds wait behind seventy of h1's (thirty-five times the claim's limit): it
    still finds them, in lane order, and reads its own copies (the brief of half of them
    names h1's copy)."""
    for n in range(60):
        world.write(f"more/{n}.jpg", 300 + n, library="one")
    world.scan()
    with world.ledger.transaction() as session:
        session.execute(update(Library).where(Library.name == "two").values(host="h2"))
        two = set(
            session.scalars(
                select(Content.item_id)
                .join(File, File.content_hash == Content.content_hash)
                .join(Library, File.library_id == Library.id)
                .where(Library.name == "two")
            )
        )
        # every item h2 can send goes to the back of the queue, in the reverse of id order
        session.execute(update(Item).where(Item.id.in_(two)).values(order_key=1e12 - Item.id))
    with world.ledger.transaction() as session:
        got = claim_due_intents(session, "h2:1:x", world.clock, limit=2, host="h2", ops=["add"])
    assert len(got) == 2 and {i.item_id for i in got} <= two
    assert all(i.library == "two" for i in got)
    with world.ledger.transaction() as session:
        keys = [session.get(Item, i.item_id).order_key for i in got]  # type: ignore[union-attr]
        rest = session.scalars(
            select(Item.order_key).where(
                Item.id.in_(two - {i.item_id for i in got}),
                Item.state == ITEM_PENDING,
                Item.op == "add",
                Item.claim_owner.is_(None),
            )
        ).all()
    assert len(rest) == len(two) - 2
    assert keys == sorted(keys) and max(keys) < min(rest)
    with world.ledger.transaction() as session:
        more = claim_due_intents(session, "h2:1:x", world.clock, limit=100, host="h2")
    assert {i.item_id for i in more} == two - {i.item_id for i in got}
    # every add reads h2's copy, those whose brief names h1's copy too
    assert all(i.library == "two" and i.relpath for i in more)
    named = [json.loads(i.brief)["lib"] for i in got + more]
    assert named.count("one") == 6 and named.count("two") == 4


def test_a_host_with_nothing_to_send_learns_it_from_the_counts(world: World) -> None:
    """Host h2's library is all synced while h1 has a backlog: h2's claim and next_due_at
    answer from the kept counts, without walking h1's backlog; a copy h2 holds, or an
    update any host may send, opens the walk again; ``gated=False`` (a host with work)
    walks anyway and finds what the counts said."""
    from sqlalchemy import event

    world.sync()
    for n in range(30):
        world.write(f"new/{n}.jpg", 500 + n, library="one")
    world.scan()
    walks: list[str] = []

    @event.listens_for(world.ledger.engine, "before_cursor_execute")
    def _walks(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "ORDER BY items.lane" in statement or "ORDER BY items.next_attempt_at" in statement:
            walks.append(statement)

    def h2_claims(**kwargs: object) -> list[int]:
        with world.ledger.transaction() as session:
            got = claim_due_intents(session, "h2:1:x", world.clock, limit=100, host="h2",
                                    **{"gated": True, **kwargs})  # type: ignore[arg-type]  # fmt: skip
            session.rollback()
        return [i.item_id for i in got]

    with world.ledger.transaction() as session:
        assert next_due_at(session, ["similar"], "h1") is not None  # h1's backlog
        walks.clear()
        assert next_due_at(session, ["similar", "product"], "h2") is None
    assert h2_claims() == []
    assert walks == []
    assert h2_claims(gated=False) == []
    assert walks, "an ungated claim walks the queue"
    # a copy h2 holds of one of h1's new images: h2 may send its add
    world.write("copy-of-new-7.jpg", 507, library="two")
    world.scan()
    walks.clear()
    got = h2_claims()
    assert len(got) == 1 and walks
    with world.ledger.transaction() as session:
        assert next_due_at(session, ["similar"], "h2") is not None
    # an update (a synced file of h1 renamed) any host may send
    world.remove("copy-of-new-7.jpg", library="two")
    world.scan()
    assert h2_claims() == []
    world.move("0.jpg", "renamed-0.jpg", src_lib="one", dst_lib="one")
    world.scan()
    with world.ledger.transaction() as session:
        updates = session.scalars(
            select(Item.id).where(Item.state == ITEM_PENDING, Item.op == "update")
        ).all()
    assert len(updates) == 1
    assert h2_claims() == list(updates)
