"""A host killed mid-sync: its leases expire, the other host does its updates
and deletes, and once restarted it converges exactly, with no duplicate item."""

from __future__ import annotations

import pytest

from syncd.gallery.server import GalleryServer

from .cluster import assert_mirrors, gallery_calls, gallery_items, wait_until
from .conftest import MakeHost

ROUNDS = 5
#: seconds: a lease (30 s) plus an idle worker's longest wait (30 s), with room to spare
TAKEOVER = 150.0


@pytest.mark.slow
def test_a_killed_hosts_updates_and_deletes_are_done_by_the_other_and_it_converges_after(
    make_host: MakeHost, gallery_server: GalleryServer
) -> None:
    a = make_host("host-a", qps=2.0)
    b = make_host("host-b", qps=2.0)
    seed = 1000
    a_files: dict[str, int] = {}
    for n in range(6):
        a.write(f"f{n}.jpg", seed + n)
        a_files[f"f{n}.jpg"] = seed + n
    # host-b holds a copy of f0: when host-a's copy goes, the brief moves to host-b's
    b.write("copy.jpg", seed)
    assert a.syncd("reconcile").code == 0
    b.start()
    wait_until(lambda: len(gallery_items(gallery_server)) == 6, what="host-b's copy synced")

    for round_ in range(ROUNDS):
        seed += 100
        names = sorted(a_files)
        renamed = {old: f"r{round_}-{old}" for old in names[:2]}
        deleted = names[2:4]
        for old, new in renamed.items():
            (a.root() / old).rename(a.root() / new)
            a_files[new] = a_files.pop(old)
        for name in deleted:
            (a.root() / name).unlink()
            del a_files[name]
        for n in range(2):
            name = f"n{round_}-{n}.jpg"
            a.write(name, seed + n)
            a_files[name] = seed + n
        gallery_server.reset_counts()
        proc = a.popen("reconcile")
        wait_until(lambda: bool(gallery_calls(gallery_server)), what="host-a's first call")
        proc.kill()
        proc.wait()

        def others_done(renamed: dict[str, str] = renamed, deleted: list[str] = deleted) -> bool:
            named = {item.where for item in gallery_items(gallery_server)}
            moved = all(f"lib-host-a/{new}" in named for new in renamed.values())
            gone = not any(f"lib-host-a/{name}" in named for name in deleted)
            return moved and gone

        wait_until(others_done, TAKEOVER, f"round {round_}: host-b doing host-a's work")
        assert b.running()

        restarted = a.syncd("reconcile")

        assert restarted.code == 0, restarted.err
        assert_mirrors(gallery_server, [a, b])
    assert b.stop() == 0
