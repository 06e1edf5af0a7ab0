"""Several hosts on one ledger (docs/rules.md, Several hosts): items keyed by content across
hosts, library ownership, one account, the status of every host."""

from __future__ import annotations

import time

from syncd.gallery.server import GalleryServer

from .cluster import assert_mirrors, gallery_calls, gallery_items
from .conftest import MakeHost


def test_copies_on_two_hosts_are_one_item_and_the_brief_moves_to_the_other_copy(
    make_host: MakeHost, gallery_server: GalleryServer
) -> None:
    a = make_host("host-a")
    b = make_host("host-b")
    a.write("x.jpg", 1)
    a.write("only-a.jpg", 2)
    assert a.syncd("reconcile").code == 0
    b.write("copy-of-x.jpg", 1)
    b.write("only-b.jpg", 3)

    assert b.syncd("reconcile").code == 0

    assert_mirrors(gallery_server, [a, b])
    assert len(gallery_items(gallery_server)) == 3, "one item per distinct image"
    assert "lib-host-a/x.jpg" in {item.where for item in gallery_items(gallery_server)}
    gallery_server.reset_counts()
    (a.root() / "x.jpg").unlink()

    assert a.syncd("reconcile").code == 0

    assert gallery_calls(gallery_server) == {"update": 1}, "the brief moves with one update"
    assert_mirrors(gallery_server, [a, b])
    assert "lib-host-b/copy-of-x.jpg" in {item.where for item in gallery_items(gallery_server)}


def test_a_copy_on_another_host_keeps_the_tags_its_owners_rules_give(
    make_host: MakeHost, gallery_server: GalleryServer
) -> None:
    a = make_host("host-a", rules=(("**", (7,)),))
    a.write("x.jpg", 60)
    assert a.syncd("reconcile").code == 0
    b = make_host("host-b")
    b.write("copy.jpg", 60)
    gallery_server.reset_counts()

    assert b.syncd("reconcile").code == 0

    assert gallery_calls(gallery_server) == {}, "host-b planned host-a's item without its rules"
    (item,) = gallery_items(gallery_server)
    assert (item.where, item.tags) == ("lib-host-a/x.jpg", (7,))


def test_status_lists_every_host_with_its_libraries_and_calls(make_host: MakeHost) -> None:
    a = make_host("host-a")
    b = make_host("host-b", libraries=("photos", "scans"))
    a.write("1.jpg", 10)
    b.write("2.jpg", 11)
    before = time.time()
    assert a.syncd("reconcile").code == 0
    assert b.syncd("reconcile").code == 0

    hosts = {host["name"]: host for host in a.status()["hosts"]}  # type: ignore[union-attr]

    assert set(hosts) == {"host-a", "host-b"}
    assert hosts["host-a"]["libraries"] == ["lib-host-a"]
    assert hosts["host-b"]["libraries"] == ["photos", "scans"]
    assert all(host["last_seen"] >= before for host in hosts.values())
    assert hosts["host-a"]["calls_last_minute"] == 1
    assert hosts["host-b"]["calls_last_minute"] == 1
    text = b.syncd("status").out
    assert "host host-a:" in text and "host host-b:" in text


def test_a_second_host_naming_a_library_another_owns_is_refused(
    make_host: MakeHost, gallery_server: GalleryServer
) -> None:
    a = make_host("host-a", libraries=("shared",))
    a.write("1.jpg", 20)
    assert a.syncd("reconcile").code == 0
    b = make_host("host-b", libraries=("shared",))
    b.write("other.jpg", 21)
    gallery_server.reset_counts()

    refused = b.syncd("reconcile")

    assert refused.code == 2, refused
    lines = refused.err.strip().splitlines()
    assert len(lines) == 1 and "host-a" in lines[0], refused.err
    assert gallery_calls(gallery_server) == {}
    assert b.syncd("run").code == 2
    assert b.syncd("reconcile", "--dry-run").code == 2, "a dry run records its scan too"
    assert [item.where for item in gallery_items(gallery_server)] == ["shared/1.jpg"]


def test_a_released_host_gives_its_libraries_to_the_next_host_naming_them(
    make_host: MakeHost, gallery_server: GalleryServer
) -> None:
    a = make_host("host-a", libraries=("shared",))
    a.write("1.jpg", 30)
    assert a.syncd("reconcile").code == 0
    b = make_host("host-b", libraries=("shared",))

    alive = b.syncd("ledger release-host", "host-a")
    assert alive.code == 2 and "host-a" in alive.err, "a host seen just now is not released"
    released = b.syncd("ledger release-host", "host-a", "--force")

    assert released.code == 0, released
    b.write("1.jpg", 30)
    assert b.syncd("reconcile").code == 0
    assert a.syncd("reconcile").code == 2


def test_a_host_with_another_api_key_than_the_ledgers_account_is_refused(
    make_host: MakeHost, gallery_server: GalleryServer
) -> None:
    a = make_host("host-a")
    a.write("1.jpg", 40)
    assert a.syncd("reconcile").code == 0
    b = make_host("host-b", api_key="another-account")
    b.write("2.jpg", 41)
    gallery_server.reset_counts()

    refused = b.syncd("reconcile")

    assert refused.code == 2, refused
    lines = refused.err.strip().splitlines()
    assert len(lines) == 1 and "api.api_key" in lines[0], refused.err
    assert "another-account" not in refused.err + refused.out, "the key itself is never said"
    assert gallery_calls(gallery_server) == {}
