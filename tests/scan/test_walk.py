"""The library walk: what a rescan sees on real trees, odd corners of a file server included."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.config import LibraryConfig, WatchConfig
from syncd.paths.filters import PathMatcher, WalkFilter
from syncd.paths.relpath import printable_relpath
from syncd.scan.hashing import hash_file
from syncd.scan.walk import FileEntry, RootUnavailable, SkippedEntry, walk_library

IMAGES = ("*.jpg", "*.jpeg", "*.png", "*.bmp", "*.gif", "*.webp", "*.tif", "*.tiff")
IGNORE = WatchConfig().ignore
DEFAULT = WalkFilter(IMAGES, (), IGNORE)


def write(root: Path, relpath: str, data: bytes = b"x") -> Path:
    """Create the file ``relpath`` under ``root`` (and its directories)."""
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def walk(root: Path | str, flt: WalkFilter = DEFAULT, follow: bool = False) -> tuple[
    dict[str, FileEntry], dict[str, SkippedEntry]
]:  # fmt: skip
    """The walk's files and skips by relpath (asserting no path comes twice)."""
    files: dict[str, FileEntry] = {}
    skipped: dict[str, SkippedEntry] = {}
    for entry in walk_library(root, flt, follow_symlinks=follow):
        target = files if isinstance(entry, FileEntry) else skipped
        assert entry.relpath not in target, f"{entry.relpath!r} reported twice"
        target[entry.relpath] = entry  # type: ignore[assignment]
    return files, skipped


def test_every_image_is_listed_with_the_stat_the_ledger_compares(tmp_path: Path) -> None:
    names = ["a.jpg", "sub/b.png", "sub/deeper/c.gif", "sub/deeper/d.webp", "e.tiff"]
    for i, name in enumerate(names):
        write(tmp_path, name, b"y" * (i + 1))
    write(tmp_path, "notes.txt")
    write(tmp_path, "sub/readme.md")
    files, skipped = walk(tmp_path)
    assert sorted(files) == sorted(names)
    assert skipped == {}
    for name, entry in files.items():
        st = os.lstat(tmp_path / name)
        assert (entry.size, entry.mtime_ns, entry.inode, entry.dev) == (
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            st.st_dev,
        )


def test_an_empty_root_yields_nothing(tmp_path: Path) -> None:
    assert walk(tmp_path) == ({}, {})


def test_extensions_match_in_any_case(tmp_path: Path) -> None:
    for name in ("IMG_0001.JPG", "scan.Jpeg", "logo.PNG", "clip.GiF", "doc.PDF"):
        write(tmp_path, name)
    files, _ = walk(tmp_path)
    assert sorted(files) == ["IMG_0001.JPG", "clip.GiF", "logo.PNG", "scan.Jpeg"]


def test_exclude_takes_path_globs_and_basename_globs(tmp_path: Path) -> None:
    for name in ("keep.jpg", "raw/a.jpg", "raw/deep/b.jpg", "x/raw/c.jpg", "x/y_thumb.jpg"):
        write(tmp_path, name)
    flt = WalkFilter(IMAGES, ["raw/**", "*_thumb.jpg"], IGNORE)
    files, _ = walk(tmp_path, flt)
    assert sorted(files) == ["keep.jpg", "x/raw/c.jpg"]


def test_an_excluded_directory_is_never_entered(tmp_path: Path) -> None:
    write(tmp_path, "keep.jpg")
    write(tmp_path, "raw/a.jpg")
    (tmp_path / "raw" / "loop").symlink_to("..")  # would be reported if the walk went in
    files, skipped = walk(tmp_path, WalkFilter(IMAGES, ["raw/**"], IGNORE), follow=True)
    assert sorted(files) == ["keep.jpg"]
    assert skipped == {}


def test_ignored_names_hide_files_and_prune_hidden_directories(tmp_path: Path) -> None:
    for name in (
        "a.jpg",
        ".hidden.jpg",
        "b.jpg~",
        "c.jpg.tmp",
        "d.JPG.TMP",
        "e.jpg.part",
        ".thumbnails/f.jpg",
        "sub/.cache/deep/g.jpg",
        "sub/h.jpg",
    ):
        write(tmp_path, name)
    files, skipped = walk(tmp_path)
    assert sorted(files) == ["a.jpg", "sub/h.jpg"]
    assert skipped == {}


def test_the_filter_of_a_library_config_is_its_include_exclude_and_ignore(tmp_path: Path) -> None:
    lib = LibraryConfig(name="l", root=tmp_path, gallery="same_hq", exclude=("old/**",))
    flt = WalkFilter.for_library(lib, WatchConfig(ignore=("*.bak",)))
    for name in ("a.jpg", "old/b.jpg", "c.jpg.bak", ".d.jpg", "e.txt"):
        write(tmp_path, name)
    files, _ = walk(tmp_path, flt)
    assert sorted(files) == [".d.jpg", "a.jpg"]


@pytest.mark.parametrize(
    ("pattern", "relpath", "matches"),
    [
        ("*.jpg", "a.jpg", True),
        ("*.jpg", "deep/down/A.JPG", True),
        ("*.jpg", "a.jpg.txt", False),
        ("img?.png", "x/img1.png", True),
        ("img?.png", "x/img10.png", False),
        ("[!a]*.gif", "b.gif", True),
        ("[!a]*.gif", "a.gif", False),
        ("[0-9]*.gif", "7up.gif", True),
        ("shoes/**", "shoes/x.jpg", True),
        ("shoes/**", "shoes/a/b/x.jpg", True),
        ("shoes/**", "men/shoes/x.jpg", False),
        ("shoes/", "shoes/a/x.jpg", True),
        ("**/shoes/*.jpg", "shoes/x.jpg", True),
        ("**/shoes/*.jpg", "a/b/shoes/x.jpg", True),
        ("**/shoes/*.jpg", "a/shoes/b/x.jpg", False),
        ("a/*/c.jpg", "a/b/c.jpg", True),
        ("a/*/c.jpg", "a/b/x/c.jpg", False),
        ("a/**/c.jpg", "a/c.jpg", True),
        ("a/**/c.jpg", "a/b/x/c.jpg", True),
        ("/top.jpg", "top.jpg", True),
        ("/top.jpg", "sub/top.jpg", False),
        ("sub/*.jpg", "sub/line\nbreak.jpg", True),
        ("*.jpg", "caf\udce9.jpg", True),
        ("a+b (1).jpg", "x/A+B (1).jpg", True),
    ],
)
def test_glob_dialect(pattern: str, relpath: str, matches: bool) -> None:
    assert PathMatcher([pattern]).matches(relpath) is matches


def test_case_can_be_made_to_matter_for_rule_globs() -> None:
    assert not PathMatcher(["Shoes/**"], ignore_case=False).matches("shoes/a.jpg")
    assert PathMatcher(["Shoes/**"], ignore_case=False).matches("Shoes/a.jpg")


@pytest.mark.parametrize("bad", ["[z-a].jpg", "", "/"])
def test_a_bad_glob_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="glob pattern"):
        PathMatcher([bad])


def test_an_ignore_pattern_with_a_slash_is_refused() -> None:
    with pytest.raises(ValueError, match="tmp/x"):
        WalkFilter(IMAGES, (), ["tmp/x"])


@given(
    pattern=st.text(alphabet="ab.*?-_X", min_size=1, max_size=8),
    name=st.text(alphabet="ab.-_xX", max_size=10),
)
def test_basename_globs_agree_with_fnmatch(pattern: str, name: str) -> None:
    expected = fnmatch.fnmatchcase(name.lower(), pattern.lower())
    assert PathMatcher([pattern]).matches(f"some/dir/{name}", name) is expected


def test_accepts_agrees_with_the_walk(tmp_path: Path) -> None:
    names = [
        "a.jpg",
        "b.txt",
        ".c.jpg",
        "d/.e/f.jpg",
        "d/g.png~",
        "raw/h.jpg",
        "k/raw/i.jpg",
        "k/j_thumb.JPG",
        "k/l.GIF",
    ]
    for name in names:
        write(tmp_path, name)
    flt = WalkFilter(IMAGES, ["raw/**", "*_thumb.jpg"], IGNORE)
    files, _ = walk(tmp_path, flt)
    assert sorted(files) == sorted(n for n in names if flt.accepts(n))
    assert sorted(files) == ["a.jpg", "k/l.GIF", "k/raw/i.jpg"]


def test_names_that_are_not_utf8_or_hold_newlines_are_listed(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    odd = [b"caf\xe9.jpg", b"line\nbreak.jpg", b"tab\there.png", b"\xff\xfe/inner\x80.gif"]
    for i, name in enumerate(odd):
        full = root + b"/" + name
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(bytes([i]) * 10)
    files, skipped = walk(tmp_path)
    assert skipped == {}
    assert sorted(os.fsencode(rel) for rel in files) == sorted(odd)
    for rel in files:
        # the relpath opens the same file again (the ledger stores os.fsencode(relpath))
        assert (
            hash_file(tmp_path / rel) == hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest()
        )
        shown = printable_relpath(rel)
        assert "\n" not in shown and shown.isprintable()
    assert printable_relpath(os.fsdecode(b"caf\xe9.jpg")) == "caf\\xe9.jpg"
    assert printable_relpath("line\nbreak.jpg") == "line\\nbreak.jpg"


def test_long_names_and_paths_longer_than_path_max_are_listed_and_readable(tmp_path: Path) -> None:
    long_name = "n" * 251 + ".jpg"  # 255 bytes, the longest a name can be
    write(tmp_path, long_name, b"long name")
    # 20 levels of 250-byte directories: about 5000 bytes, past PATH_MAX (4096)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    parts = [f"{i:02d}" + "d" * 248 for i in range(20)]
    try:
        for part in parts:
            os.mkdir(part, dir_fd=fd)
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(file_fd, b"deep content")
        os.close(file_fd)
    finally:
        os.close(fd)
    deep_rel = "/".join(parts) + "/deep.jpg"
    assert len(os.fsencode(tmp_path / deep_rel)) > 4096

    files, skipped = walk(tmp_path)
    assert skipped == {}
    assert sorted(files) == sorted([long_name, deep_rel])
    assert files[deep_rel].size == len(b"deep content")
    assert hash_file(tmp_path / deep_rel) == hashlib.sha256(b"deep content").hexdigest()


def test_symlinks_are_skipped_with_a_reason_when_not_followed(tmp_path: Path) -> None:
    write(tmp_path, "real.jpg")
    write(tmp_path, "dir/inner.jpg")
    (tmp_path / "link.jpg").symlink_to("real.jpg")
    (tmp_path / "linkdir").symlink_to("dir")
    (tmp_path / "link.txt").symlink_to("real.jpg")  # not named like an image: not mentioned
    files, skipped = walk(tmp_path)
    assert sorted(files) == ["dir/inner.jpg", "real.jpg"]
    assert skipped["link.jpg"].reason == "symlink (follow_symlinks = false)"
    assert skipped["linkdir"].reason == "symlink to a directory (follow_symlinks = false)"
    assert sorted(skipped) == ["link.jpg", "linkdir"]
    assert not any(s.unreadable for s in skipped.values())


def test_followed_symlinks_inside_the_root_count_as_their_targets(tmp_path: Path) -> None:
    write(tmp_path, "real.jpg", b"12345")
    write(tmp_path, "dir/inner.jpg")
    (tmp_path / "link.jpg").symlink_to("real.jpg")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up.jpg").symlink_to(tmp_path / "real.jpg")  # absolute, still inside
    (tmp_path / "linkdir").symlink_to("dir")
    files, skipped = walk(tmp_path, follow=True)
    assert sorted(files) == [
        "dir/inner.jpg",
        "link.jpg",
        "linkdir/inner.jpg",
        "real.jpg",
        "sub/up.jpg",
    ]
    assert skipped == {}
    real = os.stat(tmp_path / "real.jpg")
    assert (files["link.jpg"].inode, files["link.jpg"].size) == (real.st_ino, 5)


def test_symlinks_leading_out_of_the_root_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    write(outside, "secret.jpg")
    write(root, "ok.jpg")
    (root / "abs.jpg").symlink_to(outside / "secret.jpg")
    (root / "rel.jpg").symlink_to("../outside/secret.jpg")
    (root / "outdir").symlink_to(outside)
    (root / "sub").mkdir()
    (root / "sub" / "sneaky").symlink_to("../../outside")
    files, skipped = walk(root, follow=True)
    assert sorted(files) == ["ok.jpg"]
    assert sorted(skipped) == ["abs.jpg", "outdir", "rel.jpg", "sub/sneaky"]
    assert {s.reason for s in skipped.values()} == {"symlink leads outside the library root"}


def test_a_root_reached_through_a_symlink_is_walked(tmp_path: Path) -> None:
    write(tmp_path, "real/a.jpg")
    (tmp_path / "real" / "b.jpg").symlink_to("a.jpg")
    (tmp_path / "alias").symlink_to("real")
    files, skipped = walk(tmp_path / "alias", follow=True)
    assert sorted(files) == ["a.jpg", "b.jpg"]
    assert skipped == {}


def test_symlink_loops_end_with_a_reason(tmp_path: Path) -> None:
    write(tmp_path, "a/pic.jpg")
    (tmp_path / "a" / "up").symlink_to("..")
    (tmp_path / "a" / "self").symlink_to(".")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "to_c").symlink_to("../c")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "to_b").symlink_to("../b")
    (tmp_path / "ping.jpg").symlink_to("pong.jpg")  # a loop of file links
    (tmp_path / "pong.jpg").symlink_to("ping.jpg")
    files, skipped = walk(tmp_path, follow=True)
    assert sorted(files) == ["a/pic.jpg"]
    loops = {rel for rel, s in skipped.items() if s.reason.startswith("symlink loop")}
    assert loops == {"a/up", "a/self", "b/to_c/to_b", "c/to_b/to_c"}
    assert skipped["ping.jpg"].reason.startswith("cannot resolve symlink")


def test_dangling_symlinks_are_reported_when_named_like_images(tmp_path: Path) -> None:
    (tmp_path / "gone.jpg").symlink_to("nowhere.jpg")
    (tmp_path / "gone.txt").symlink_to("nowhere.txt")
    files, skipped = walk(tmp_path, follow=True)
    assert files == {}
    assert {rel: s.reason for rel, s in skipped.items()} == {"gone.jpg": "dangling symlink"}


def test_fifos_sockets_and_devices_are_skipped_with_their_kind(shared_dir: Path) -> None:
    write(shared_dir, "ok.jpg")
    os.mkfifo(shared_dir / "pipe.jpg")
    os.mkfifo(shared_dir / "pipe.txt")  # not named like an image: not mentioned
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fspath(shared_dir / "sock.png"))
    expected = {"pipe.jpg": "not a regular file: FIFO", "sock.png": "not a regular file: socket"}
    try:
        os.mknod(shared_dir / "null.gif", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        expected["null.gif"] = "not a regular file: character device"
    except PermissionError:
        pass  # creating device nodes needs CAP_MKNOD; FIFOs and sockets still cover the path
    try:
        files, skipped = walk(shared_dir)
    finally:
        sock.close()
    assert sorted(files) == ["ok.jpg"]
    assert {rel: s.reason for rel, s in skipped.items()} == expected
    (shared_dir / "p2.jpg").symlink_to("pipe.jpg")
    _, skipped = walk(shared_dir, follow=True)
    assert skipped["p2.jpg"].reason == "symlink to a non-regular file: FIFO"


def test_files_vanishing_mid_scan_are_not_yielded(tmp_path: Path) -> None:
    names = [f"flat/{i:05d}.jpg" for i in range(3000)]
    names += [f"sub{d}/{i:03d}.jpg" for d in range(20) for i in range(50)]
    for name in names:
        write(tmp_path, name)
    entries = walk_library(tmp_path, DEFAULT)
    first = next(entries)
    assert isinstance(first, FileEntry)
    deleted = {name for name in names if name != first.relpath}
    for name in deleted:
        (tmp_path / name).unlink()
    for d in range(20):  # whole directories disappear too
        if not first.relpath.startswith(f"sub{d}/"):
            (tmp_path / f"sub{d}").rmdir()
    rest = list(entries)
    assert rest == []


def test_a_missing_root_raises_at_once_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(RootUnavailable, match="does not exist"):
        walk_library(tmp_path / "missing", DEFAULT)
    write(tmp_path, "file.jpg")
    with pytest.raises(RootUnavailable, match="is not a directory"):
        walk_library(tmp_path / "file.jpg", DEFAULT)
    (tmp_path / "dangling").symlink_to("nowhere")
    with pytest.raises(RootUnavailable, match="does not exist"):
        walk_library(tmp_path / "dangling", DEFAULT)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count descriptors")
def test_stopping_a_walk_early_releases_its_descriptors(tmp_path: Path) -> None:
    for depth in range(10):
        write(tmp_path, "/".join(f"d{i}" for i in range(depth + 1)) + "/x.jpg")
    before = open_fds()
    entries = walk_library(tmp_path, DEFAULT)
    for _ in range(5):
        next(entries)
    assert len(open_fds() - before) >= 2  # a descriptor per open directory level
    entries.close()  # type: ignore[attr-defined]
    assert open_fds() == before


# runs in a separate interpreter that gives up root before walking (see run_unprivileged)
_WALK_AS_NOBODY = """
import json, os, sys
from syncd.scan.walk import FileEntry, RootUnavailable, walk_library
from syncd.paths.filters import WalkFilter
flt = WalkFilter(["*.jpg"], [], [])
os.setgroups([]); os.setgid(65534); os.setuid(65534)
try:
    entries = list(walk_library(sys.argv[1], flt))
except RootUnavailable as exc:
    print(json.dumps({"root_unavailable": exc.reason}))
else:
    print(json.dumps({
        "files": sorted(e.relpath for e in entries if isinstance(e, FileEntry)),
        "skipped": {e.relpath: [e.reason, e.unreadable] for e in entries
                    if not isinstance(e, FileEntry)},
    }))
"""


def run_unprivileged(root: Path) -> dict[str, object]:
    """Walk ``root`` as an unprivileged user: permissions do not bind root itself.

    As root, a fresh interpreter imports syncd and then switches to uid/gid 65534 before
    walking (the venv's interpreter may not be reachable by that user, so no exec as it).
    """
    if os.geteuid() != 0:
        code = _WALK_AS_NOBODY.replace("os.setgroups([]); os.setgid(65534); os.setuid(65534)", "")
    else:
        code = _WALK_AS_NOBODY
    done = subprocess.run(
        [sys.executable, "-c", code, os.fspath(root)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("running as root without the right to switch users: permissions cannot bind")
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_an_unreadable_directory_is_reported_as_unreadable_and_the_rest_listed(
    shared_dir: Path,
) -> None:
    write(shared_dir, "ok.jpg")
    write(shared_dir, "locked/hidden.jpg")
    write(shared_dir, "open/fine.jpg")
    (shared_dir / "locked").chmod(0)
    result = run_unprivileged(shared_dir)
    assert result["files"] == ["ok.jpg", "open/fine.jpg"]
    assert result["skipped"] == {"locked": ["cannot open directory: permission denied", True]}


def test_an_unreadable_root_raises_root_unavailable(shared_dir: Path) -> None:
    write(shared_dir, "lib/a.jpg")
    (shared_dir / "lib").chmod(0)
    assert "not readable" in str(run_unprivileged(shared_dir / "lib")["root_unavailable"])
    (shared_dir / "lib").chmod(0o644)  # listable but not searchable
    assert "cannot be searched" in str(run_unprivileged(shared_dir / "lib")["root_unavailable"])


def _sizes(entries: Iterable[FileEntry | SkippedEntry]) -> int:
    return sum(e.size for e in entries if isinstance(e, FileEntry))


def test_a_large_flat_directory_streams_every_file_once(tmp_path: Path) -> None:
    for i in range(5000):
        (tmp_path / f"{i:05d}.jpg").write_bytes(b"z" * (i % 7))
    files, _ = walk(tmp_path)
    assert len(files) == 5000
    assert _sizes(walk_library(tmp_path, DEFAULT)) == sum(i % 7 for i in range(5000))
