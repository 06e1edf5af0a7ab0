"""Streaming walk of a library root: which regular files are there, with what size/mtime/inode.

The walk is the hot path of a no-change rescan (its target: benchmarks/README.md), so it
does one ``lstat`` per accepted file (``DirEntry.stat``), matches names against precompiled
regexes, builds no per-file ``Path`` and logs nothing per file. ``walk_batches`` (the
scanner's hot path) hands the files of a directory over as one ``FileBatch`` of columns
(stored path, signature, device), the form the scanner compares with the ledger, and builds
no record per file; ``walk_library`` yields one ``FileEntry`` per file, lazily. Directories
are opened relative to their parent's descriptor (``openat``), which keeps paths longer than
``PATH_MAX`` walkable and means a directory swapped for a symlink mid-scan cannot lead the
walk out of the root.

Paths are ``str`` as ``os.fsdecode`` makes them: bytes that are not UTF-8 survive as lone
surrogates (``surrogateescape``). Such a ``str`` cannot be encoded as UTF-8, so the ledger
must store ``os.fsencode(relpath)`` (bytes, e.g. a BLOB column) or compare in that form;
``printable_relpath`` gives the one-line form for logs and messages.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Final, NamedTuple, cast

from syncd.errors import SyncdError
from syncd.paths.filters import WalkFilter
from syncd.paths.identity import file_signature
from syncd.paths.relpath import printable_relpath

__all__ = [
    "FileBatch",
    "FileEntry",
    "MountPoint",
    "RootUnavailable",
    "SkippedEntry",
    "entry_of",
    "walk_batches",
    "walk_library",
]

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_S_IFMT: Final = 0o170000
_S_IFREG: Final = stat.S_IFREG
_MASK64: Final = (1 << 64) - 1
#: files per ``FileBatch`` at most (a directory with more is handed over in parts)
BATCH_FILES: Final = 4096


class FileEntry(NamedTuple):
    """A regular file under the root that passed the filters.

    ``relpath`` is relative to the root with ``/`` separators (see the module docstring for
    names that are not UTF-8); ``size`` is in bytes, ``mtime_ns`` in nanoseconds since the
    epoch; ``inode``/``dev`` identify the file (of the link's target when a followed symlink).
    A named tuple, not a dataclass: one is made per file, and a frozen dataclass costs twice
    the time to build (a no-change rescan of 100k files spends 0.05 s more).
    """

    relpath: str
    size: int
    mtime_ns: int
    inode: int
    dev: int


class FileBatch(NamedTuple):
    """Regular files that passed the filters, from one directory, in three columns.

    ``keys[i]`` is the relpath in the ledger's stored form (UTF-8, undecodable bytes kept
    by ``surrogateescape``); ``signatures[i]`` is ``file_signature`` of its size, mtime_ns
    and inode; ``devs[i]`` its ``st_dev``. Columns, not records: a no-change rescan of 100k
    files then compares two values per file and builds no object for it.
    """

    keys: list[bytes]
    signatures: list[int]
    devs: list[int]


def entry_of(key: bytes, signature: int, dev: int) -> FileEntry:
    """The ``FileEntry`` of one file of a ``FileBatch``."""
    return FileEntry(
        key.decode("utf-8", "surrogateescape"),
        (signature >> 64) & _MASK64,
        signature >> 128,
        signature & _MASK64,
        dev,
    )


class MountPoint(NamedTuple):
    """A folder under the root on another filesystem than the folder that holds it (its
    ``st_dev`` differs): a mount point. Yielded before anything the walk finds in it.

    What the ledger knows under a mount point that is no longer mounted is unknown, not
    vanished: the scan remembers the mount points it walked to tell the two apart.
    """

    relpath: str
    dev: int


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """Something at ``relpath`` that the scan could not or would not take, with a one-line reason.

    ``unreadable`` is True when the scan could not read the path (permission or I/O error):
    what the ledger knows at ``relpath`` or under ``relpath + "/"`` is then unknown, not
    vanished, and must not be deleted (docs/rules.md, Unknown is not gone). When False the
    path is there but is not a library file by the rules (a symlink not followed or leading
    out of the root, a FIFO, …), so rows for it may go like those of a vanished file.
    """

    relpath: str
    reason: str
    unreadable: bool = False


class RootUnavailable(SyncdError):
    """The library root is missing, not a directory or unreadable; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


_KINDS: Final = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISDIR, "directory"),
)


def _kind(mode: int) -> str:
    """A word for a file type that is not a regular file."""
    return next((word for test, word in _KINDS if test(mode)), f"file type {stat.S_IFMT(mode):o}")


def _open_root(root: str) -> int:
    """Open the root directory, or raise ``RootUnavailable`` with why not."""
    shown = printable_relpath(root)
    try:
        fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        raise RootUnavailable(f"library root {shown} does not exist") from None
    except NotADirectoryError:
        raise RootUnavailable(f"library root {shown} is not a directory") from None
    except PermissionError:
        raise RootUnavailable(f"library root {shown} is not readable (permission denied)") from None
    except OSError as exc:
        raise RootUnavailable(f"library root {shown} cannot be opened ({exc.strerror})") from None
    try:
        # opening "." through the descriptor needs search permission, which stat of entries needs
        os.close(os.open(".", _DIR_FLAGS, dir_fd=fd))
    except OSError as exc:
        os.close(fd)
        raise RootUnavailable(f"library root {shown} cannot be searched ({exc.strerror})") from None
    return fd


def walk_library(
    root: str | os.PathLike[str], flt: WalkFilter, follow_symlinks: bool = False
) -> Iterator[FileEntry | SkippedEntry | MountPoint]:
    """Stream the files of a library root: a ``FileEntry`` per regular file the filter takes,
    and a ``MountPoint`` before the contents of each folder on another filesystem.

    Raises ``RootUnavailable`` at once (not at the first ``next``) when the root is missing,
    not a directory or unreadable. The walk then runs lazily, in no particular order, with an
    explicit stack (open descriptors: one per directory level) and never leaves the root:

    - ignored names yield nothing, and ignored or ``dir/**``-excluded directories are not entered;
    - a file or directory that vanishes mid-scan yields nothing;
    - a directory or file that cannot be read yields ``SkippedEntry(unreadable=True)``;
    - FIFOs, sockets and devices whose names the filter takes yield a ``SkippedEntry``;
    - symlinks: with ``follow_symlinks`` they count as what they point to when that lies inside
      the root; a link leading outside, dangling, or back to an enclosing directory (a loop)
      yields a ``SkippedEntry``. Without it, a link whose name the filter takes, or that points
      to a directory, yields ``SkippedEntry(reason="symlink (follow_symlinks = false)")``.
      Links between sibling trees are walked as often as they are reached (no dedup).

    Closing the generator early closes every descriptor it holds.
    """
    root_str = os.fspath(root)
    os.close(_open_root(root_str))  # fail now, in the caller's frame, not at the first next()
    walk = _walk(root_str, flt, follow_symlinks, one_by_one=True)
    return cast(Iterator[FileEntry | SkippedEntry | MountPoint], walk)  # one by one: no batch


def walk_batches(
    root: str | os.PathLike[str], flt: WalkFilter, follow_symlinks: bool = False
) -> Generator[FileBatch | SkippedEntry | MountPoint, None, None]:
    """``walk_library`` with the files of each directory handed over as one ``FileBatch``
    (at most ``BATCH_FILES`` files each): the same files, skips, mount points and errors, in
    the same order, for the scanner's hot path."""
    root_str = os.fspath(root)
    os.close(_open_root(root_str))  # fail now, in the caller's frame, not at the first next()
    walk = _walk(root_str, flt, follow_symlinks)
    # batches: no FileEntry
    return cast(Generator[FileBatch | SkippedEntry | MountPoint, None, None], walk)


# one pending subdirectory: (name, (dev, ino) a followed symlink resolved to or None, realpath)
_Subdir = tuple[str, tuple[int, int] | None, str]


def _new_batch() -> tuple[
    FileBatch, Callable[[bytes], None], Callable[[int], None], Callable[[int], None]
]:  # fmt: skip
    """An empty batch and the ``append`` of each of its columns."""
    batch = FileBatch([], [], [])
    return batch, batch.keys.append, batch.signatures.append, batch.devs.append


def _walk(
    root: str, flt: WalkFilter, follow: bool, one_by_one: bool = False
) -> Generator[FileBatch | FileEntry | SkippedEntry | MountPoint, None, None]:
    """The generator behind ``walk_batches`` and ``walk_library``: files in batches, or
    ``one_by_one`` as ``FileEntry`` records, each stat'ed only when the caller asks for the
    next (a file deleted meanwhile is not reported)."""
    ignore = flt._ignore
    quick = flt._quick
    takes = flt.takes_file
    prune = flt.exclude.prune_dir
    root_real = os.path.realpath(root) if follow else ""

    # the directories on the current path: (fd, prefix, subdirs left, (dev, ino))
    stack: list[tuple[int, str, list[_Subdir], tuple[int, int]]] = []
    on_path: set[tuple[int, int]] = set()
    fd = _open_root(root)
    try:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        prefix = ""
        real = root_real
        crossed = False  # whether the directory at prefix is on another device than its parent
        while True:
            subdirs: list[_Subdir] = []
            try:
                entries = os.scandir(fd)
            except OSError as exc:
                os.close(fd)
                if not prefix:
                    reason = f"library root {printable_relpath(root)} cannot be listed"
                    raise RootUnavailable(f"{reason} ({exc.strerror})") from None
                if crossed:
                    yield MountPoint(prefix[:-1], key[0])
                yield SkippedEntry(prefix[:-1], f"cannot list directory: {exc.strerror}", True)
            else:
                stack.append((fd, prefix, subdirs, key))
                on_path.add(key)
                if crossed:
                    yield MountPoint(prefix[:-1], key[0])
                batch, add_key, add_signature, add_dev = _new_batch()
                with entries:
                    for entry in entries:
                        name = entry.name
                        try:
                            if entry.is_file(follow_symlinks=False):
                                if quick is not None:
                                    if not quick(name):
                                        continue
                                elif (ignore is not None and ignore(name)) or not takes(
                                    prefix + name, name
                                ):
                                    continue
                                st = entry.stat(follow_symlinks=False)
                                if st.st_mode & _S_IFMT == _S_IFREG:
                                    if one_by_one:
                                        yield FileEntry(
                                            prefix + name,
                                            st.st_size,
                                            st.st_mtime_ns,
                                            st.st_ino,
                                            st.st_dev,
                                        )
                                        continue
                                    add_key((prefix + name).encode("utf-8", "surrogateescape"))
                                    add_signature(
                                        file_signature(st.st_size, st.st_mtime_ns, st.st_ino)
                                    )
                                    add_dev(st.st_dev)
                                    if len(batch.keys) >= BATCH_FILES:
                                        yield batch
                                        batch, add_key, add_signature, add_dev = _new_batch()
                                    continue
                            elif ignore is not None and ignore(name):
                                continue
                            elif entry.is_dir(follow_symlinks=False):
                                if prune is None or prune(prefix + name) is None:
                                    subdirs.append(
                                        (name, None, os.path.join(real, name) if real else "")
                                    )
                                continue
                            other = _other_entry(entry, fd, prefix, real, root_real, flt, follow)
                            if isinstance(other, FileEntry) and not one_by_one:
                                add_key(other.relpath.encode("utf-8", "surrogateescape"))
                                add_signature(
                                    file_signature(other.size, other.mtime_ns, other.inode)
                                )
                                add_dev(other.dev)
                                if len(batch.keys) >= BATCH_FILES:
                                    yield batch
                                    batch, add_key, add_signature, add_dev = _new_batch()
                                continue
                            if isinstance(other, FileEntry | SkippedEntry):
                                if batch.keys:  # keep the order of the entries
                                    yield batch
                                    batch, add_key, add_signature, add_dev = _new_batch()
                                yield other
                            elif other is not None:
                                subdirs.append(other)
                        except FileNotFoundError:
                            continue  # vanished between the listing and the stat
                        except OSError as exc:
                            if batch.keys:
                                yield batch
                                batch, add_key, add_signature, add_dev = _new_batch()
                            yield SkippedEntry(prefix + name, f"cannot stat: {exc.strerror}", True)
                if batch.keys:
                    yield batch

            # descend into the next subdirectory of the deepest directory that has one left
            while stack:
                pfd, pprefix, psubs, pkey = stack[-1]
                if not psubs:
                    stack.pop()
                    on_path.discard(pkey)
                    os.close(pfd)
                    continue
                name, expect, real = psubs.pop()
                rel = pprefix + name
                opened = _open_subdir(pfd, name, rel, expect, on_path)
                if isinstance(opened, tuple):
                    fd, key = opened
                    prefix = rel + "/"
                    crossed = key[0] != pkey[0]
                    break
                if opened is not None:
                    yield opened
            else:
                return
    finally:
        for frame in stack:
            os.close(frame[0])


def _open_subdir(
    parent_fd: int,
    name: str,
    rel: str,
    expect: tuple[int, int] | None,
    on_path: set[tuple[int, int]],
) -> tuple[int, tuple[int, int]] | SkippedEntry | None:
    """Open a subdirectory by name under its parent's descriptor.

    ``expect`` is None for a real directory (opened without following a symlink) or the
    (dev, ino) a followed symlink resolved to. Returns the descriptor and its (dev, ino),
    a ``SkippedEntry``, or None when it vanished or changed kind since it was listed.
    """
    flags = _DIR_FLAGS if expect is not None else _DIR_FLAGS | os.O_NOFOLLOW
    try:
        fd = os.open(name, flags, dir_fd=parent_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        return SkippedEntry(rel, "cannot open directory: permission denied", True)
    except OSError as exc:
        if exc.errno == errno.ELOOP and expect is None:
            return None  # replaced by a symlink since it was listed; the next scan sees that
        return SkippedEntry(rel, f"cannot open directory: {exc.strerror}", True)
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        return SkippedEntry(rel, f"cannot stat directory: {exc.strerror}", True)
    key = (st.st_dev, st.st_ino)
    if expect is not None and key != expect:
        os.close(fd)
        return None  # the link was changed between resolving and opening it
    if key in on_path:
        os.close(fd)
        what = "symlink loop" if expect is not None else "file system loop"
        return SkippedEntry(rel, f"{what}: leads back to an enclosing directory")
    return fd, key


def _other_entry(
    entry: os.DirEntry[str],
    dir_fd: int,
    prefix: str,
    dir_real: str,
    root_real: str,
    flt: WalkFilter,
    follow: bool,
) -> FileEntry | SkippedEntry | _Subdir | None:
    """The slow path: a symlink, a special file, or a file that changed kind since listing.

    Returns what to yield, a subdirectory to walk (a followed link, or a directory that was
    not one when listed), or None. OSErrors propagate to the caller.
    """
    name = entry.name
    rel = prefix + name
    lst = entry.stat(follow_symlinks=False)
    if not stat.S_ISLNK(lst.st_mode):
        if stat.S_ISDIR(lst.st_mode):
            if flt.prunes_dir(rel):
                return None
            return (name, None, os.path.join(dir_real, name) if dir_real else "")
        if stat.S_ISREG(lst.st_mode):  # became a regular file after listing
            if not flt.takes_file(rel, name):
                return None
            return FileEntry(rel, lst.st_size, lst.st_mtime_ns, lst.st_ino, lst.st_dev)
        if not flt.takes_file(rel, name):
            return None
        return SkippedEntry(rel, f"not a regular file: {_kind(lst.st_mode)}")

    if not follow:
        if flt.takes_file(rel, name):
            return SkippedEntry(rel, "symlink (follow_symlinks = false)")
        try:
            target_is_dir = stat.S_ISDIR(os.stat(name, dir_fd=dir_fd).st_mode)
        except OSError:
            return None  # dangling or unreachable, and not named like a library file
        if target_is_dir and not flt.prunes_dir(rel):
            return SkippedEntry(rel, "symlink to a directory (follow_symlinks = false)")
        return None

    try:
        real = os.path.realpath(
            os.path.join(dir_real, os.readlink(name, dir_fd=dir_fd)), strict=True
        )
    except FileNotFoundError:
        return SkippedEntry(rel, "dangling symlink") if flt.takes_file(rel, name) else None
    except OSError as exc:
        return SkippedEntry(rel, f"cannot resolve symlink: {exc.strerror}")
    if real != root_real and not real.startswith(root_real.rstrip("/") + "/"):
        return SkippedEntry(rel, "symlink leads outside the library root")
    st = os.stat(real)
    if stat.S_ISDIR(st.st_mode):
        return None if flt.prunes_dir(rel) else (name, (st.st_dev, st.st_ino), real)
    if not flt.takes_file(rel, name):
        return None
    if not stat.S_ISREG(st.st_mode):
        return SkippedEntry(rel, f"symlink to a non-regular file: {_kind(st.st_mode)}")
    return FileEntry(rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
