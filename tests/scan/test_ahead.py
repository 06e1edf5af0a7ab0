"""Walks started ahead in a child process (what a no-change ``reconcile`` rides on).

The child is forked only by a process that runs no thread yet, which the test process may
not be (the gallery servers of other tests), so each probe runs in a fresh interpreter.
"""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from syncd.config import LibraryConfig, WatchConfig
from syncd.paths.filters import WalkFilter
from syncd.paths.identity import file_signature
from syncd.scan.walk import (
    FileBatch,
    FileEntry,
    RootUnavailable,
    SkippedEntry,
    entry_of,
    walk_batches,
    walk_library,
)

REPO = Path(__file__).resolve().parents[2]

#: prints, for each library of the config in argv[1], what ``take`` streamed and what a walk
#: in this process yields (marshal on stdout); both as ("unavailable", reason) when not walkable
SAME_WALK_PROBE = """
import marshal, sys
from pathlib import Path
from syncd.config import load_config
from syncd.scan.ahead import start_walks
from syncd.scan.walk import FileBatch, RootUnavailable, walk_batches
from syncd.paths.filters import WalkFilter

def listed(walk):
    try:
        return [("files", *item) if type(item) is FileBatch else
                ("skipped", item.relpath, item.reason, item.unreadable) for item in walk()]
    except RootUnavailable as exc:
        return ("unavailable", exc.reason)

config = load_config(Path(sys.argv[1]))
found = {}
with start_walks(config) as walks:
    assert walks.started
    for lib in config.libraries:
        flt = WalkFilter.for_library(lib, config.watch)
        ahead = listed(lambda: walks.take(lib, config.watch))
        here = listed(lambda: walk_batches(lib.root, flt, lib.follow_symlinks))
        found[lib.name] = (ahead, here)
sys.stdout.buffer.write(marshal.dumps(found))
"""


def probe(code: str, *args: str) -> Any:
    """Run ``code`` in a fresh interpreter (no thread running: it may fork); its marshal'd
    stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return marshal.loads(done.stdout)


def write(root: Path, relpath: str | bytes, data: bytes = b"x") -> None:
    path = os.path.join(os.fsencode(root), os.fsencode(relpath))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(data)


def config_file(base: Path, libraries: str) -> Path:
    path = base / "config.toml"
    path.write_text(f'[ledger]\npath = "./ledger.db"\n{libraries}', encoding="utf-8")
    return path


def test_a_walk_ahead_streams_exactly_what_a_walk_here_yields(shared_dir: Path) -> None:
    photos = shared_dir / "photos"
    for n in range(5000):  # more than one batch in one folder
        write(photos, f"many/{n:05}.jpg")
    for name in ("a.jpg", "deep/er/b.PNG", "c.txt", ".hidden.jpg", "d.jpg~", ".git/e.jpg"):
        write(photos, name)
    for odd in (b"caf\xe9.jpg", b"line\nbreak.jpg", b"\xff\xfe/inner\x80.gif", "日本.jpg"):
        write(photos, odd)
    os.mkfifo(photos / "pipe.jpg")
    (photos / "link.jpg").symlink_to("a.jpg")
    (photos / "linkdir").symlink_to("deep")
    followed = shared_dir / "followed"
    write(followed, "real/x.jpg")
    (followed / "alias").symlink_to("real")
    (followed / "real" / "up").symlink_to("..")
    (followed / "out.jpg").symlink_to(photos / "a.jpg")
    shop = shared_dir / "shop"
    for name in ("shoes/a.jpg", "shoes/raw/b.jpg", "bags/c.jpg", "bags/c_thumb.jpg"):
        write(shop, name)
    config = config_file(
        shared_dir,
        '[[library]]\nname = "photos"\nroot = "./photos"\ngallery = "similar"\n'
        '[[library]]\nname = "followed"\nroot = "./followed"\ngallery = "similar"\n'
        "follow_symlinks = true\n"
        '[[library]]\nname = "shop"\nroot = "./shop"\ngallery = "product"\n'
        'include = ["shoes/**", "*.JPG"]\nexclude = ["shoes/raw/**", "*_thumb.jpg"]\n'
        '[[library]]\nname = "gone"\nroot = "./gone"\ngallery = "similar"\n',
    )

    found = probe(SAME_WALK_PROBE, str(config))

    for name, (ahead, here) in found.items():
        assert ahead == here, name
    photos = found["photos"][1]
    photos_files = [key for item in photos if item[0] == "files" for key in item[1]]
    assert len(photos_files) == 5000 + 2 + 4
    assert b"caf\xe9.jpg" in photos_files and b"\xff\xfe/inner\x80.gif" in photos_files
    photos_skips = {item[1]: item[2] for item in photos if item[0] == "skipped"}
    assert photos_skips["pipe.jpg"] == "not a regular file: FIFO"
    assert photos_skips["link.jpg"] == "symlink (follow_symlinks = false)"
    assert found["gone"][1][0] == "unavailable"


KILLED_WALKER_PROBE = """
import marshal, os, signal, sys
from pathlib import Path
from syncd.config import load_config
from syncd.scan.ahead import WalkFailed, start_walks

config = load_config(Path(sys.argv[1]))
lib = config.libraries[0]
walks = start_walks(config)
pid = walks.pid
stream = walks.take(lib, config.watch)
next(stream)  # the child has started streaming
os.kill(pid, signal.SIGKILL)
try:
    for _ in stream:
        pass
    failure = None
except WalkFailed as exc:
    failure = exc.reason
walks.close()
reaped = not os.path.exists(f"/proc/{pid}")
sys.stdout.buffer.write(marshal.dumps((failure, reaped)))
"""


def test_a_walker_killed_mid_stream_surfaces_as_one_line_and_leaves_no_zombie(
    shared_dir: Path,
) -> None:
    # long names: the stream (~250 bytes a file) is far more than the pipe (up to
    # fs.pipe-max-size) and the reader's buffer (1 MiB) hold, so the kill cuts it short
    pipe_max = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    files = max(12_000, 3 * (pipe_max + (1 << 20)) // 250)
    if files > 100_000:
        pytest.skip(f"pipes here hold {pipe_max} bytes: too big a tree to outgrow them")
    stem = "x" * 200
    for n in range(files):
        write(shared_dir / "photos", f"d{n // 500:02}/{stem}{n:05}.jpg", b"")
    config = config_file(
        shared_dir, '[[library]]\nname = "photos"\nroot = "./photos"\ngallery = "similar"\n'
    )

    failure, reaped = probe(KILLED_WALKER_PROBE, str(config))

    assert failure is not None, "the stream ended as if complete"
    assert "killed by signal 9" in failure and "photos" in failure
    assert "\n" not in failure
    assert reaped


ENDED_WALKER_PROBE = """
import marshal, os, signal, sys
from pathlib import Path
from syncd.config import load_config
from syncd.scan.ahead import start_walks
from syncd.scan.walk import FileBatch, walk_batches
from syncd.paths.filters import WalkFilter

config = load_config(Path(sys.argv[1]))
big, small = config.libraries
walks = start_walks(config)
os.kill(walks.pid, signal.SIGKILL)  # long before it is through the big library
taken = walks.take(small, config.watch)
walks.close()
flt = WalkFilter.for_library(small, config.watch)
files = sum(len(b.keys) for b in walk_batches(small.root, flt) if type(b) is FileBatch)
sys.stdout.buffer.write(marshal.dumps((taken is None, files)))
"""


def test_a_library_the_walker_never_reached_is_walked_here(shared_dir: Path) -> None:
    for n in range(20_000):
        write(shared_dir / "big", f"d{n // 1000:02}/{n:05}.jpg", b"")
    write(shared_dir / "small", "a.jpg")
    config = config_file(
        shared_dir,
        '[[library]]\nname = "big"\nroot = "./big"\ngallery = "similar"\n'
        '[[library]]\nname = "small"\nroot = "./small"\ngallery = "similar"\n',
    )

    not_taken, files = probe(ENDED_WALKER_PROBE, str(config))

    assert not_taken, "a library the child never walked was not left to this process"
    assert files == 1


def test_batches_hold_what_the_one_by_one_walk_yields(tmp_path: Path) -> None:
    for name in ("a.jpg", "sub/b.png", "sub/deeper/c.gif", "notes.txt", ".h.jpg"):
        write(tmp_path, name, name.encode())
    for odd in (b"caf\xe9.jpg", b"tab\there.png"):
        write(tmp_path, odd)
    (tmp_path / "link.jpg").symlink_to("a.jpg")
    flt = WalkFilter(("*.jpg", "*.png", "*.gif"), (), WatchConfig().ignore)

    one_by_one = list(walk_library(tmp_path, flt))
    batched: list[FileEntry | SkippedEntry] = []
    for item in walk_batches(tmp_path, flt):
        if isinstance(item, FileBatch):
            batched += [entry_of(*file) for file in zip(*item, strict=True)]
        else:
            batched.append(item)

    assert batched == one_by_one
    assert len([e for e in batched if isinstance(e, FileEntry)]) == 5


def test_a_batch_carries_each_files_signature(tmp_path: Path) -> None:
    write(tmp_path, "a.jpg", b"12345")
    os.utime(tmp_path / "a.jpg", ns=(0, -1_500_000_000))  # before 1970: negative mtime_ns
    batch = next(walk_batches(tmp_path, WalkFilter()))
    assert isinstance(batch, FileBatch)
    st = os.lstat(tmp_path / "a.jpg")
    assert batch.signatures == [file_signature(st.st_size, st.st_mtime_ns, st.st_ino)]
    entry = entry_of(batch.keys[0], batch.signatures[0], batch.devs[0])
    assert entry == FileEntry("a.jpg", 5, -1_500_000_000, st.st_ino, st.st_dev)


def test_a_missing_root_is_unavailable_in_every_form(tmp_path: Path) -> None:
    lib = LibraryConfig(name="l", root=tmp_path / "nowhere", gallery="similar")
    flt = WalkFilter.for_library(lib, WatchConfig())
    for walk in (walk_batches, walk_library):
        try:
            walk(lib.root, flt)
        except RootUnavailable as exc:
            assert exc.reason.endswith("does not exist")
        else:
            raise AssertionError(f"{walk.__name__} did not refuse a missing root")
