"""The planner as a pure function: facts in, desired items out (no database, no disk)."""

from __future__ import annotations

import json

from syncd.api.baidu.brief import brief_path, make_brief
from syncd.api.baidu.limits import MAX_BRIEF_BYTES
from syncd.config import TagRule
from syncd.ledger.facts import FileFact, ItemFact, Transition
from syncd.plan.planner import plan_gallery, tags_for

H1 = "1" * 64
H2 = "2" * 64
NOW = 10_000.0
GRACE = 30.0


def live(fid: int, path: str, h: str = H1, seen: float = 0.0, lib: str = "lib") -> FileFact:
    return FileFact(fid, lib, path, h, "live", seen)


def gone(fid: int, path: str, at: float, h: str = H1, seen: float = 0.0) -> FileFact:
    return FileFact(fid, "lib", path, h, "vanished", seen, at)


def synced(item_id: int, brief_of: str, *contents: str) -> ItemFact:
    return ItemFact(
        item_id, frozenset(contents or (H1,)), "sign", True, make_brief("lib", brief_of, H1, MAX_BRIEF_BYTES), ()
    )


def test_a_new_content_becomes_one_new_item() -> None:
    plan = plan_gallery([H1], [], [live(1, "a.jpg")], [], {}, NOW, GRACE)
    (item,) = plan.items
    assert item.item_id is None and item.present
    assert item.brief == '{"lib":"lib","path":"a.jpg"}'
    assert item.source_file_id == 1


def test_copies_share_one_item_named_after_the_oldest_copy() -> None:
    files = [live(1, "z.jpg", seen=5.0), live(2, "a.jpg", seen=9.0), live(3, "b.jpg", seen=5.0)]
    (item,) = plan_gallery([H1], [], files, [], {}, NOW, GRACE).items
    assert brief_path(item.brief) == "b.jpg"  # oldest, then by path


def test_a_rename_keeps_the_item_and_names_the_new_path() -> None:
    files = [gone(1, "old.jpg", at=NOW), live(2, "new.jpg", seen=NOW)]
    plan = plan_gallery([H1], [synced(7, "old.jpg")], files, [], {}, NOW, GRACE)
    (item,) = plan.items
    assert item.item_id == 7 and item.present and brief_path(item.brief) == "new.jpg"
    assert [(m.vanished_file_id, m.heir_file_id) for m in plan.moves] == [(1, 2)]


def test_a_vanished_copy_keeps_the_brief_during_grace() -> None:
    files = [gone(1, "a.jpg", at=NOW - 10), live(2, "b.jpg", seen=0.5)]
    plan = plan_gallery([H1], [synced(7, "a.jpg")], files, [], {}, NOW, GRACE)
    assert brief_path(plan.items[0].brief) == "a.jpg"
    assert plan.moves == [] and plan.expired_file_ids == []


def test_a_vanished_file_past_grace_expires_and_its_item_goes() -> None:
    plan = plan_gallery(
        [H1], [synced(7, "a.jpg")], [gone(1, "a.jpg", NOW - 31)], [], {}, NOW, GRACE
    )
    assert plan.expired_file_ids == [1]
    assert plan.items[0].present is False


def test_an_item_not_yet_in_the_gallery_is_never_added_from_a_vanished_file() -> None:
    item = ItemFact(7, frozenset((H1,)), None, True, make_brief("lib", "a.jpg", H1, MAX_BRIEF_BYTES), ())
    plan = plan_gallery([H1], [item], [gone(1, "a.jpg", NOW - 1)], [], {}, NOW, GRACE)
    assert plan.items[0].present is False


def test_the_old_item_of_a_changed_path_waits_for_the_new_add() -> None:
    files = [live(1, "a.jpg", h=H2)]
    plan = plan_gallery([H1, H2], [synced(7, "a.jpg")], files, [Transition(H1, H2)], {}, NOW, GRACE)
    by_id = {i.item_id: i for i in plan.items}
    assert by_id[7].present is False and by_id[7].wait_for_content == H2
    assert by_id[None].present and by_id[None].wait_for_content is None


def test_tags_come_from_the_first_matching_rule_of_the_holders_library() -> None:
    rules = {"lib": [TagRule("shoes/**", (100, 11)), TagRule("*.JPG", (5,))]}
    (item,) = plan_gallery([H1], [], [live(1, "shoes/a/b.jpg")], [], rules, NOW, GRACE).items
    assert item.tags == (100, 11)
    assert tags_for(rules["lib"], "x/y.jpg") == (5,)  # a name glob matches at any depth
    assert tags_for(rules["lib"], "x/y.png") == ()


def test_a_long_path_is_shortened_and_carries_the_hash() -> None:
    path = "folder/" * 60 + "picture.jpg"
    brief = make_brief("lib", path, H1, MAX_BRIEF_BYTES)
    data = json.loads(brief)
    assert len(brief.encode("utf-8")) <= 256
    assert data["h"] == H1[:16] and data["path"].endswith("picture.jpg")
    assert data["path"].startswith("…")


def test_a_long_path_of_wide_and_escaped_characters_still_fits() -> None:
    path = '图片"\\' * 100 + ".jpg"
    brief = make_brief("名前" * 10, path, H2, MAX_BRIEF_BYTES)
    assert len(brief.encode("utf-8")) <= 256
    assert json.loads(brief)["path"].endswith(".jpg")


def test_a_short_path_needs_no_hash() -> None:
    assert make_brief("lib", "a/b.jpg", H1, MAX_BRIEF_BYTES) == '{"lib":"lib","path":"a/b.jpg"}'


def test_an_undecodable_name_is_shown_replaced_and_carries_the_hash() -> None:
    relpath = b"caf\xe9.jpg".decode("utf-8", "surrogateescape")
    data = json.loads(make_brief("lib", relpath, H1, MAX_BRIEF_BYTES))
    assert data == {"lib": "lib", "path": "caf\ufffd.jpg", "h": H1[:16]}
