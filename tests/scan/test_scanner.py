"""Scan -> ledger -> plan, on real trees and a real SQLite ledger (docs/rules.md, Keeping
the gallery in step).

Each test scans, plays the intents through the ledger's queue as a sync engine would
(``World.sync``), changes the disk, scans again and checks which calls follow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger.world import Call, World
from sqlalchemy import select

from syncd.ledger.models import ITEM_PENDING, Item
from syncd.ledger.queue import claim_due_intents, record_added
from syncd.scan.scanner import scan_library


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def test_new_images_become_one_add_each(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("sub/b.jpg", 2)
    result = world.scan()
    assert result.libraries[0].new == 2
    assert sorted(c.path for c in world.sync()) == ["a.jpg", "sub/b.jpg"]
    assert sorted(world.gallery().values()) == ["a.jpg", "sub/b.jpg"]


def test_unchanged_files_cost_no_call_and_no_reread(world: World) -> None:
    path = world.write("a.jpg", 1)
    world.scan()
    world.sync()
    before = world.files()["a.jpg"].content_hash
    # same size, mtime and inode but other bytes: only a re-read could notice
    st = path.stat()
    with path.open("r+b") as f:
        f.seek(st.st_size - 3)
        f.write(b"\x00\x00\x00")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    result = world.scan(after=5)
    assert result.libraries[0].unchanged == 1
    assert result.libraries[0].changed == 0
    assert world.files()["a.jpg"].content_hash == before
    assert world.sync() == []


def test_rename_costs_one_update_call(world: World) -> None:
    world.write("a.jpg", 1)
    world.scan()
    world.sync()
    world.move("a.jpg", "renamed/b.jpg")
    world.scan(after=1)
    assert world.sync() == [Call("update", "renamed/b.jpg", "similar")]
    assert list(world.gallery().values()) == ["renamed/b.jpg"]
    assert list(world.files()) == ["renamed/b.jpg"]


def test_move_between_libraries_of_one_gallery_costs_one_update(tmp_path: Path) -> None:
    world = World(
        tmp_path,
        [{"name": "left", "gallery": "same_hq"}, {"name": "right", "gallery": "same_hq"}],
    )
    try:
        world.write("a.jpg", 1, library="left")
        world.write("stays.jpg", 2, library="left")
        world.scan()
        world.sync()
        world.move("a.jpg", "moved.jpg", src_lib="left", dst_lib="right")
        world.scan(after=1)
        assert world.sync() == [Call("update", "moved.jpg", "same_hq")]
        briefs = sorted(item.have_brief or "" for item in world.items())
        assert briefs == [
            '{"lib":"left","path":"stays.jpg"}',
            '{"lib":"right","path":"moved.jpg"}',
        ]
    finally:
        world.close()


def test_moving_to_a_library_of_another_gallery_adds_there_and_deletes_here(
    tmp_path: Path,
) -> None:
    world = World(
        tmp_path,
        [{"name": "left", "gallery": "same_hq"}, {"name": "right", "gallery": "product"}],
        delete_grace=10.0,
    )
    try:
        world.write("a.jpg", 1, library="left")
        world.write("stays.jpg", 2, library="left")
        world.scan()
        world.sync()
        world.move("a.jpg", "a.jpg", src_lib="left", dst_lib="right")
        world.scan(after=1)
        assert world.sync() == [Call("add", "a.jpg", "product")]
        world.scan(after=11)
        assert world.sync() == [Call("delete", "a.jpg", "same_hq")]
    finally:
        world.close()


def test_content_change_adds_the_new_image_before_deleting_the_old(world: World) -> None:
    world.write("a.jpg", 1)
    world.scan()
    world.sync()
    old_sign = next(iter(world.gallery()))
    world.write("a.jpg", 2)
    world.scan(after=1)
    with world.ledger.transaction() as session:
        first = claim_due_intents(session, "w1", world.clock)
        # the delete of the old item is not due while the add of the new one is pending
        assert [i.op for i in first] == ["add"]
        assert claim_due_intents(session, "w2", world.clock) == []
        record_added(session, first[0].item_id, "w1", "new-sign", first[0].brief, (), world.clock)
    assert world.sync() == [Call("delete", "a.jpg", "similar")]
    assert old_sign not in world.gallery()
    assert list(world.gallery().values()) == ["a.jpg"]


def test_vanished_file_is_deleted_only_after_delete_grace(world: World) -> None:
    world.write("a.jpg", 1)
    world.write("b.jpg", 2)
    world.scan()
    world.sync()
    world.remove("a.jpg")
    world.scan(after=1)
    assert world.sync() == []
    world.scan(after=29)
    assert world.sync() == []
    world.scan(after=1)
    assert world.sync() == [Call("delete", "a.jpg", "similar")]
    assert list(world.gallery().values()) == ["b.jpg"]


def test_file_restored_within_grace_sends_nothing(world: World) -> None:
    world.write("a.jpg", 1)
    world.scan()
    world.sync()
    data = (world.root() / "a.jpg").read_bytes()
    world.remove("a.jpg")
    world.scan(after=1)
    (world.root() / "a.jpg").write_bytes(data)
    world.scan(after=10)
    world.scan(after=60)
    assert world.sync() == []
    assert list(world.gallery().values()) == ["a.jpg"]


def test_copies_become_one_item_named_after_the_oldest_copy(world: World) -> None:
    world.write("first.jpg", 1)
    world.scan()
    assert world.sync() == [Call("add", "first.jpg", "similar")]
    world.write("a-later-copy.jpg", 1)
    world.scan(after=100)
    assert world.sync() == []
    assert list(world.gallery().values()) == ["first.jpg"]


def test_deleting_one_copy_moves_the_brief_to_a_remaining_copy(world: World) -> None:
    world.write("b.jpg", 1)
    world.write("c.jpg", 1)
    world.scan()
    assert world.sync() == [Call("add", "b.jpg", "similar")]
    world.remove("b.jpg")
    world.scan(after=100)
    assert world.sync() == []  # delete_grace: b.jpg may come back
    world.scan(after=31)
    assert world.sync() == [Call("update", "c.jpg", "similar")]


def test_deleting_the_last_copy_deletes_the_item(world: World) -> None:
    world.write("b.jpg", 1)
    world.write("c.jpg", 1)
    world.write("other.jpg", 2)
    world.scan()
    world.sync()
    world.remove("b.jpg")
    world.remove("c.jpg")
    world.scan(after=100)
    world.scan(after=31)
    assert world.sync() == [Call("delete", "b.jpg", "similar")]
    assert list(world.gallery().values()) == ["other.jpg"]
    assert len(world.items()) == 1


def test_rename_while_the_add_is_in_flight_costs_one_update_after_it(world: World) -> None:
    world.write("a.jpg", 1)
    world.scan()
    with world.ledger.transaction() as session:
        (intent,) = claim_due_intents(session, "w1", world.clock)
    world.move("a.jpg", "b.jpg")
    world.scan(after=1)
    with world.ledger.transaction() as session:
        assert claim_due_intents(session, "w2", world.clock) == []  # claimed, not due twice
        record_added(session, intent.item_id, "w1", "sign-a", intent.brief, (), world.clock)
    assert world.sync() == [Call("update", "b.jpg", "similar")]


def test_tags_come_from_the_first_matching_rule(tmp_path: Path) -> None:
    world = World(
        tmp_path,
        [
            {
                "name": "photos",
                "gallery": "product",
                "rules": [("shoes/**", (100, 11)), ("*.png", (7,)), ("**", (1,))],
            }
        ],
    )
    try:
        world.write("shoes/x/a.jpg", 1)
        world.write("deep/b.png", 2)
        world.write("c.jpg", 3)
        world.scan()
        tags = {i.want_brief: i.want_tags for i in world.items()}
        assert tags == {
            '{"lib":"photos","path":"shoes/x/a.jpg"}': "100,11",
            '{"lib":"photos","path":"deep/b.png"}': "7",
            '{"lib":"photos","path":"c.jpg"}': "1",
        }
    finally:
        world.close()


def test_files_that_are_not_images_are_failures_with_a_reason(world: World) -> None:
    (world.root() / "notes.jpg").write_bytes(b"plain text, not a JPEG")
    world.write("tiny.png", 1)
    (world.root() / "tiny.png").write_bytes(
        __import__("devkit.imagegen").imagegen.make_image(1, size=(8, 8), fmt="PNG")
    )
    result = world.scan()
    assert result.libraries[0].rejected == 2
    rows = world.files()
    assert rows["notes.jpg"].verdict == "rejected"
    assert "not an image" in (rows["notes.jpg"].verdict_reason or "")
    assert rows["tiny.png"].verdict == "rejected"
    assert world.items() == []


def test_a_file_that_becomes_an_image_later_is_added(world: World) -> None:
    (world.root() / "a.jpg").write_bytes(b"half-written")
    world.scan()
    world.write("a.jpg", 4)
    world.scan(after=1)
    assert world.sync() == [Call("add", "a.jpg", "similar")]


def test_an_image_replaced_by_garbage_is_deleted_without_waiting(world: World) -> None:
    world.write("a.jpg", 1)
    world.scan()
    world.sync()
    (world.root() / "a.jpg").write_bytes(b"garbage now")
    world.scan(after=1)
    assert world.sync() == [Call("delete", "a.jpg", "similar")]


def test_odd_names_round_trip_through_the_ledger(world: World) -> None:
    root = os.fsencode(world.root())
    names = [b"caf\xc3\xa9.jpg", b"latin1-\xe9.jpg", b"new\nline.jpg", b'quote"back\\slash.jpg']
    data = __import__("devkit.imagegen").imagegen.make_image
    for n, name in enumerate(names):
        with open(os.path.join(root, name), "wb") as f:
            f.write(data(10 + n))
    world.scan()
    stored = {os.fsencode(p) for p in world.files()}
    assert stored == set(names)
    briefs = {i.want_brief for i in world.items()}
    assert any('"h":' in b for b in briefs)  # the undecodable name carries its hash
    assert all(len(b.encode("utf-8")) <= 256 for b in briefs)
    result = world.scan(after=1)
    assert result.libraries[0].unchanged == len(names)
    assert len(world.sync()) == len(names)


def test_intents_planned_before_a_crash_are_not_lost(world: World) -> None:
    world.write("a.jpg", 1)
    # a scan whose planner never ran (the process died between the two)
    lib = world.config.libraries[0]
    scan_library(world.ledger, world.config, lib, world.clock)
    assert world.items() == []
    result = world.scan(after=1)
    assert result.libraries[0].unchanged == 1
    assert world.sync() == [Call("add", "a.jpg", "similar")]


def test_only_the_named_library_is_scanned(tmp_path: Path) -> None:
    world = World(tmp_path, [{"name": "one"}, {"name": "two"}])
    try:
        world.write("a.jpg", 1, library="one")
        world.write("b.jpg", 2, library="two")
        result = world.scan(names=["two"])
        assert [lib.name for lib in result.libraries] == ["two"]
        assert [c.path for c in world.sync()] == ["b.jpg"]
    finally:
        world.close()


def test_pending_items_have_a_due_time(world: World) -> None:
    world.write("a.jpg", 1)
    world.scan()
    with world.ledger.transaction() as session:
        item = session.scalars(select(Item)).one()
        assert item.state == ITEM_PENDING
        assert item.op == "add"
        assert item.next_attempt_at <= world.clock


def test_a_file_written_just_now_is_read_once_it_has_settled(tmp_path: Path) -> None:
    world = World(tmp_path, settle=0.3)
    try:
        world.write("fresh.jpg", 1)
        result = world.scan()
        assert result.libraries[0].settling == 0
        assert world.sync() == [Call("add", "fresh.jpg", "similar")]
    finally:
        world.close()
