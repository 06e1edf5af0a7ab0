"""The health model on real folders: what a root tells, what the operator accepts, and what
`syncd run` publishes for `status` (syncd/health.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from syncd.health import (
    ServiceStateFile,
    WatchState,
    inspect_root,
    library_health,
    read_service_state,
)


def test_a_root_tells_whether_it_is_there_readable_mounted_and_empty(tmp_path: Path) -> None:
    def codes(root: Path, known: int | None = 0) -> list[str]:
        return [r.code for r in library_health("lib", inspect_root(root), known_files=known).reasons]

    assert codes(tmp_path / "nowhere") == ["root_missing"]
    (tmp_path / "a-file").write_bytes(b"x")
    assert codes(tmp_path / "a-file") == ["root_missing"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert codes(empty) == ["root_empty"]  # a new library, say
    assert codes(empty, None) == ["root_empty"]  # the ledger away: nothing known of it
    # an empty folder on its parent's filesystem where the ledger knows files: not mounted
    assert codes(empty, 3) == ["root_unmounted"]
    (empty / "photo.jpg").write_bytes(b"x")
    assert codes(empty, 3) == []


def test_a_root_seen_as_a_mount_point_and_now_on_its_parents_device_is_unmounted(
    tmp_path: Path,
) -> None:
    root = tmp_path / "share"
    root.mkdir()  # a fresh folder lives on its parent's filesystem
    (root / "stray.jpg").write_bytes(b"written while the share was away")
    facts = inspect_root(root)
    assert facts.on_parent_device
    was_mounted = WatchState("inotify", mount_device="0:999")
    (reason,) = library_health("lib", facts, watch=was_mounted, known_files=5).reasons
    assert reason.code == "root_unmounted"
    assert reason.detail == (
        f"root {root} is no longer a mount point: it is a folder on its parent's filesystem "
        f"(device {facts.device}; it was on device 0:999); is it mounted?"
    )
    # never seen as a mount point: a folder with files is just a folder
    assert library_health("lib", facts, watch=WatchState("inotify"), known_files=5).reasons == ()


def test_accepted_reasons_are_shown_but_do_not_degrade(tmp_path: Path) -> None:
    (tmp_path / "p.jpg").write_bytes(b"x")
    polled = WatchState("polling", "watch.polling = true", poll_interval=2.0)
    facts = inspect_root(tmp_path)
    health = library_health("lib", facts, watch=polled, known_files=1, held_deletes=1)
    assert [r.code for r in health.reasons] == ["polling", "held_deletes"]
    assert health.degraded and health.polling
    assert health.lines() == [
        "library lib: polled every 2 s instead of watched: watch.polling = true",
        "library lib: 1 delete held (more than safety.max_delete_fraction vanished at once); "
        "if meant, release them with `syncd reconcile --allow-mass-delete`",
    ]
    accepted = library_health(
        "lib", facts, watch=polled, known_files=1, held_deletes=1, accept=("polling",)
    )
    assert accepted.degraded and len(accepted.lines(accepted=True)) == 1
    assert not library_health(
        "lib", facts, watch=polled, known_files=1, held_deletes=1,
        accept=("polling", "held_deletes"),
    ).degraded  # fmt: skip
    assert accepted.as_dict()["reasons"][0] == {
        "code": "polling",
        "detail": "polled every 2 s instead of watched: watch.polling = true",
        "accepted": True,
    }


def test_what_the_service_publishes_is_read_back_while_it_runs_only(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db.service.json"
    states = {"lib": WatchState("polling", "inotify watch limit reached", True, 1.0, "0:40", 5.0)}
    roots = {"lib": inspect_root(tmp_path)}
    ServiceStateFile(path).publish(states, roots)
    published = read_service_state(path)
    assert published is not None
    assert published.watch == states and published.roots == roots

    # a file left by a service that died says nothing
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    ServiceStateFile(path, pid=int(gone.stdout)).publish(states, roots)
    assert read_service_state(path) is None
    path.write_text("{not json")
    assert read_service_state(path) is None

    mine = ServiceStateFile(path)
    mine.publish(states, roots)
    mine.remove()
    assert not path.exists()
