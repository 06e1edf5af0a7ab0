"""Twenty hosts claiming from one PostgreSQL ledger at once: each intent is claimed once,
an add only by a host holding a live copy of its image, and the counts the writes keep
stay equal to a full count while the answers are recorded side by side."""

from __future__ import annotations

import threading
from pathlib import Path

from ledgers import LedgerChoice
from sqlalchemy import update

from ledger.world import World
from syncd.ledger.counters import full_count, kept_counts
from syncd.ledger.models import Library
from syncd.ledger.queue import AddedItem, claim_due_intents, copies_elsewhere, record_adds
from syncd.ledger.schema import open_ledger

HOSTS = 20
#: images per host; one in three is also in the next host's library
PER_HOST = 6


def test_twenty_hosts_claim_each_intent_once_and_only_adds_they_hold(
    tmp_path: Path, pg_url: str
) -> None:
    libraries = [{"name": f"lib{h:02d}", "gallery": "similar"} for h in range(HOSTS)]
    world = World(tmp_path, libraries, ledger=LedgerChoice("postgresql", pg_url))
    try:
        for h in range(HOSTS):
            for n in range(PER_HOST):
                seed = h * 100 + n
                world.write(f"{n}.jpg", seed, library=f"lib{h:02d}")
                if n % 3 == 0 and h + 1 < HOSTS:  # the next host has a copy
                    world.write(f"copy{n}.jpg", seed, library=f"lib{h + 1:02d}")
        world.scan()
        with world.ledger.transaction() as session:
            for h in range(HOSTS):
                session.execute(
                    update(Library).where(Library.name == f"lib{h:02d}").values(host=f"h{h:02d}")
                )
        claimed: dict[str, list[tuple[int, str | None, str | None]]] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(HOSTS)

        def host(name: str) -> None:
            ledger = open_ledger(world.config.ledger)
            got: list[tuple[int, str | None, str | None]] = []
            owner = f"{name}:1:test"
            try:
                start.wait()
                while True:
                    with ledger.transaction() as session:
                        assert copies_elsewhere(session, name)
                        batch = claim_due_intents(session, owner, world.clock, limit=2, host=name)
                    if not batch:
                        break
                    got += [(i.item_id, i.library, i.relpath) for i in batch]
                    with ledger.transaction() as session:
                        record_adds(
                            session,
                            [
                                AddedItem(i.item_id, f"s{i.item_id}", i.brief, i.tags, world.clock)
                                for i in batch
                            ],
                            owner,
                        )
            except BaseException as exc:  # reported below, with the thread's name
                errors.append(exc)
            finally:
                ledger.close()
            claimed[name] = got

        threads = [
            threading.Thread(target=host, args=(f"h{h:02d}",), name=f"h{h:02d}")
            for h in range(HOSTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        every = [item for got in claimed.values() for item, _, _ in got]
        assert len(every) == len(set(every)) == HOSTS * PER_HOST
        for name, got in claimed.items():
            # each add read a copy in a library of the host that claimed it
            assert all(library == "lib" + name[1:] for _, library, _ in got), (name, got)
        with world.ledger.transaction() as session:
            assert kept_counts(session) == full_count(session)
            synced = sum(n for (_, _, kind), n in kept_counts(session).items() if kind == "synced")
        assert synced == sum(len(world.files(f"lib{h:02d}")) for h in range(HOSTS))
    finally:
        world.close()
