"""The counts the writes keep (syncd.ledger.counters) equal a full count of the rows after
any sequence of the ledger's real operations, on SQLite and on PostgreSQL.

Each example is a fresh world (real image files, a real ledger: a SQLite file, or a
PostgreSQL database of its own) driven by random steps through the ledger's own paths:
scans of new, changed, moved and vanished files (full and targeted), the planner, claims
answered as successes, failures and backoffs, ``retry``, deletes after the grace, mass
vanishes held and released, adoptions (merged items), a library moved to another gallery.
After every step the kept counts must equal what a full count finds; a write path that
forgets them fails here.
"""

from __future__ import annotations

import dataclasses
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ledgers import LedgerChoice
from sqlalchemy import select, text

from ledger.world import World
from syncd.ledger.browse import release_held_deletes
from syncd.ledger.counters import full_count, kept_counts
from syncd.ledger.files import ensure_library
from syncd.ledger.models import ITEM_FAILED, SCHEMA_VERSION, Item
from syncd.ledger.queue import claim_due_intents, merge_items, record_failure
from syncd.ledger.report import ledger_status
from syncd.ledger.retry import queue_failures_again
from syncd.ledger.schema import open_ledger

LIBRARIES = [
    {"name": "photos", "gallery": "similar"},
    {"name": "shared", "gallery": "similar"},
    {"name": "shop", "gallery": "product"},
]
SLOTS = 4
#: few distinct images: copies across paths and libraries are common
SEEDS = st.integers(min_value=0, max_value=5)
LIBS = st.sampled_from([str(lib["name"]) for lib in LIBRARIES])
SLOT = st.integers(min_value=0, max_value=SLOTS - 1)

STEPS = st.one_of(
    st.tuples(st.just("write"), LIBS, SLOT, SEEDS),
    st.tuples(st.just("remove"), LIBS, SLOT),
    st.tuples(st.just("move"), LIBS, SLOT, SLOT),
    st.tuples(st.just("scan"), st.sampled_from([0.0, 2.0])),
    st.tuples(st.just("look"), LIBS, SLOT),
    st.tuples(st.just("sync")),
    st.tuples(st.just("fail"), st.booleans()),
    st.tuples(st.just("retry")),
    st.tuples(st.just("mass"), st.booleans()),
    st.tuples(st.just("merge")),
    st.tuples(st.just("regallery")),
)


@contextmanager
def _fresh_ledger(engine: str, server: str | None) -> Iterator[LedgerChoice]:
    """A ledger of its own for one example: SQLite, or a new PostgreSQL database."""
    if engine == "sqlite" or server is None:
        yield LedgerChoice("sqlite")
        return
    name = f"syncd_counts_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    try:
        netloc = parts.netloc.replace(":@", "@")
        yield LedgerChoice("postgresql", urlunsplit(parts._replace(netloc=netloc, path=f"/{name}")))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _path(slot: int) -> str:
    return f"a/{slot}.jpg"


def _play(world: World, step: tuple[object, ...]) -> None:
    kind = step[0]
    if kind == "write":
        _, lib, slot, seed = step
        world.write(_path(int(slot)), int(seed), library=str(lib))  # type: ignore[call-overload]
    elif kind == "remove":
        _, lib, slot = step
        path = world.root(str(lib)) / _path(int(slot))  # type: ignore[call-overload]
        path.unlink(missing_ok=True)
    elif kind == "move":
        _, lib, src, dst = step
        if (world.root(str(lib)) / _path(int(src))).exists() and src != dst:  # type: ignore[call-overload]
            world.move(_path(int(src)), _path(int(dst)), str(lib), str(lib))  # type: ignore[call-overload]
    elif kind == "scan":
        world.scan(after=float(step[1]))  # type: ignore[arg-type]
    elif kind == "look":
        _, lib, slot = step
        world.scan_paths([_path(int(slot))], library=str(lib))  # type: ignore[call-overload]
    elif kind == "sync":
        world.sync()
    elif kind == "fail":
        with world.ledger.transaction() as session:
            for intent in claim_due_intents(session, "test-engine", world.clock, limit=2):
                retry_at = world.clock + 1 if step[1] else None
                record_failure(
                    session, intent.item_id, "test-engine", 216201, "bad", world.clock, retry_at
                )
    elif kind == "retry":
        with world.ledger.transaction() as session:
            queue_failures_again(
                session, ["photos", "shared", "shop"], ["similar", "product"], None, world.clock
            )
    elif kind == "mass":
        _mass(world, release=bool(step[1]))
    elif kind == "merge":
        with world.ledger.transaction() as session:
            ids = list(
                session.scalars(select(Item.id).where(Item.gallery == "similar").order_by(Item.id))
            )
            if len(ids) >= 2:
                merge_items(session, ids[-1], ids[0])
    elif kind == "regallery":
        # the library "shared" now feeds the other gallery, then the one it had
        for gallery in ("product", "similar"):
            lib = next(lib for lib in world.config.libraries if lib.name == "shared")
            with world.ledger.transaction() as session:
                ensure_library(session, dataclasses.replace(lib, gallery=gallery))  # type: ignore[arg-type]


def _mass(world: World, release: bool) -> None:
    """Twelve files appear in "photos", then all vanish at once: their deletes are held
    (max_delete_fraction 0.5); with ``release`` they go (``--allow-mass-delete``)."""
    for n in range(12):
        world.write(f"mass/{n}.jpg", 100 + n)
    world.scan()
    for n in range(12):
        world.remove(f"mass/{n}.jpg")
    world.scan()
    if release:
        with world.ledger.transaction() as session:
            release_held_deletes(session, "photos", world.clock, 1.0)


def _assert_counts_kept(world: World, step: object) -> None:
    with world.ledger.transaction() as session:
        kept, counted = kept_counts(session), full_count(session)
    assert kept == counted, f"after {step}: kept {dict(kept)} != counted {dict(counted)}"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_server(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    if request.param == "postgresql":
        return "postgresql", request.getfixturevalue("pg_server_url")
    return "sqlite", None


@settings(
    # the same 40 sequences on every run (a CI run cannot fail on a sequence nobody has seen);
    # to explore new ones, set derandomize=False for a few runs (each finds its own)
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEPS, min_size=1, max_size=14))
# found by a clean clone's run: a library moved away from a gallery and back
@example(steps=[("write", "shared", 0, 0), ("scan", 0.0), ("regallery",)])
def test_kept_counts_equal_a_full_count(
    engine_server: tuple[str, str | None], steps: list[tuple[object, ...]]
) -> None:
    engine, server = engine_server
    with (
        tempfile.TemporaryDirectory(prefix="syncd-counts-") as scratch,
        _fresh_ledger(engine, server) as choice,
    ):
        world = World(
            Path(scratch), LIBRARIES, ledger=choice, delete_grace=1.0, max_delete_fraction=0.5
        )
        try:
            for step in steps:
                _play(world, step)
                _assert_counts_kept(world, step)
        finally:
            world.close()


def test_status_reads_the_kept_counts(tmp_path: Path, ledger_choice: LedgerChoice) -> None:
    """A library's status line: files by state and items, as the writes left them."""
    world = World(tmp_path, LIBRARIES, ledger=ledger_choice, delete_grace=1.0)
    try:
        world.write("a.jpg", 1)
        world.write("b.jpg", 1)  # a copy: one item for two files
        world.write("c.jpg", 2)
        world.write("a.jpg", 1, library="shared")  # the same image in another library
        world.scan()
        names = [(str(lib["name"]), str(lib["gallery"])) for lib in LIBRARIES]
        with world.ledger.transaction() as session:
            line = ledger_status(session, names, world.clock).libraries[0]
        assert (line.files, line.items, line.pending, line.synced) == (3, 2, 3, 0)
        world.sync()
        with world.ledger.transaction() as session:
            assert claim_due_intents(session, "w", world.clock) == []
            lines = ledger_status(session, names, world.clock).libraries
        assert (lines[0].files, lines[0].items, lines[0].synced) == (3, 2, 3)
        assert (lines[1].files, lines[1].items, lines[1].synced) == (1, 1, 1)
        world.remove("c.jpg")
        world.scan()
        with world.ledger.transaction() as session:
            line = ledger_status(session, names, world.clock).libraries[0]
            failed = session.scalars(select(Item).where(Item.state == ITEM_FAILED)).all()
        assert (line.files, line.items, line.synced, line.pending) == (2, 1, 2, 1)
        assert failed == []
    finally:
        world.close()


def test_an_upgrade_starts_the_counts_from_a_full_count(
    tmp_path: Path, ledger_choice: LedgerChoice
) -> None:
    """A ledger written before the counts were kept (schema 4) gets them on opening."""
    world = World(tmp_path, LIBRARIES, ledger=ledger_choice)
    try:
        world.write("a.jpg", 1)
        world.write("b.jpg", 2, library="shop")
        world.scan()
        world.sync()
        world.write("c.jpg", 3)
        world.scan()
        with world.ledger.transaction() as session:
            expected = full_count(session)
            session.execute(text("DROP TABLE ledger_counts"))
            session.execute(text("UPDATE schema_version SET version = 4"))
    finally:
        world.close()
    ledger = open_ledger(world.config.ledger)
    try:
        with ledger.transaction() as session:
            assert session.scalar(text("SELECT version FROM schema_version")) == SCHEMA_VERSION
            assert kept_counts(session) == expected
        assert expected[(1, "", "synced")] == 1 and expected[(1, "", "pending")] == 1
    finally:
        ledger.close()
