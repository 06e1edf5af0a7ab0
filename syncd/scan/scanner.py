"""Scanning libraries into the ledger: walk, compare, hash what changed, judge, record, plan.

Per library: stream the walk against a compact index of the ledger's rows; a file whose
size, mtime_ns and inode match its row costs nothing more. Changed and new
files are hashed on a thread pool and checked as images (header only), and their rows
are written in batches together with the planner's queue. A file with the identity
(dev, inode, size, mtime_ns) of a row at another path is that file moved: its known
content is reused, not read again. Files the walk no longer finds vanish,
unless the root is missing, unreadable or empty (no deletes at all) or the scan could
not see them (a folder it cannot read, a mount point not mounted, a root now on another
filesystem: ``syncd.scan.unseen``, whose verdict the library's conditions keep in the
ledger), and a scan that vanishes too much of a library holds those deletes; files a
built-in system folder name hides now vanish without being held. The planner then turns
the queued contents into item intents.

``scan_libraries`` walks whole libraries (the one-shot commands: files still being
written are waited for a few rounds); ``scan_paths`` looks only at the paths the watcher
handed over (``LookAgain``: a stat per path, a walk per folder) and compares them with the
ledger's rows at and below those paths, under the same rules; it waits for no writer but
reports the files still being written (``LibraryScan.settling_paths``) for the watcher to
hand back once they are quiet (docs/rules.md, Settle).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import repeat
from typing import Protocol

from syncd.config import Config, LibraryConfig
from syncd.ledger.conditions import (
    ROOT_UNAVAILABLE,
    LibraryConditions,
    RootCondition,
    load_conditions,
    store_conditions,
)
from syncd.ledger.files import (
    KnownContent,
    LedgerIndex,
    LibraryRow,
    Observation,
    count_files,
    count_files_under,
    ensure_library,
    hold_mass_vanish,
    items_left_by,
    known_contents,
    load_index,
    record_observations,
    record_vanished,
    release_holds,
)
from syncd.ledger.models import VERDICT_OK, VERDICT_REJECTED, VERDICT_SKIPPED
from syncd.ledger.schema import Ledger
from syncd.paths.filters import WalkFilter, ignore_globs, system_folders_in_force
from syncd.paths.handoff import LookAgain, seconds_until_quiet
from syncd.paths.identity import FileIdentity, file_identity, file_signature
from syncd.paths.relpath import decode_relpath, printable_relpath
from syncd.scan.ahead import WalkAhead
from syncd.scan.unseen import (
    WalkFacts,
    at_or_above,
    at_or_below,
    device_of,
    judge_unseen,
    look_at_mounts,
    unreadable_folders,
    unreadable_warning,
)
from syncd.scan.walk import (
    FileBatch,
    FileEntry,
    MountPoint,
    RootUnavailable,
    SkippedEntry,
    _kind,
    _open_root,
    entry_of,
    walk_batches,
    walk_library,
)

_log = logging.getLogger(__name__)

#: file rows written per transaction
BATCH_ROWS = 1000
#: threads hashing changed files
HASH_WORKERS = 4
#: skipped entries a scan result keeps for display (all are counted and logged)
KEEP_SKIPPED = 100
#: rounds of waiting for files still being written before leaving them to the next scan
SETTLE_ROUNDS = 3
#: files still being written named one per log line in a scan; the rest are counted
KEEP_SETTLING_LOGGED = 20
#: walked entries between two progress updates
TICK_ENTRIES = 1000

_DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Progress(Protocol):
    """Told how a library's walk advances (a progress bar on a terminal)."""

    def update(self, entries: int) -> None:
        """``entries`` more paths were walked."""

    def finish(self) -> None:
        """The walk is over."""


#: progress(library, files the ledger knows there) -> the Progress of that library's walk
ProgressFactory = Callable[[LibraryConfig, int], Progress]


@dataclass
class LibraryScan:
    """What one library's scan found. Counts are files."""

    name: str
    gallery: str
    seen: int = 0
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    vanished: int = 0
    #: vanished files whose deletes are held (more than max_delete_fraction and at least
    #: files.MASS_VANISH_FLOOR vanished)
    held: int = 0
    #: held deletes let go by allow_mass_delete
    released: int = 0
    rejected: int = 0
    unreadable: int = 0
    #: files still being written (quiet for less than watch.settle): not recorded yet
    settling: int = 0
    #: their paths, relative to the root: for the watcher to hand back once they are quiet
    settling_paths: list[str] = field(default_factory=list)
    skipped_count: int = 0
    skipped: list[SkippedEntry] = field(default_factory=list)
    #: files the ledger knew that could not be looked at: neither seen nor vanished (in
    #: unreadable folders, under mount points not mounted, under a root that changed)
    unknown: int = 0
    #: why the root could not be scanned (missing, unreadable, empty, another filesystem):
    #: nothing vanished
    unavailable: str | None = None
    #: what the library's conditions are after this scan (the filesystems it knows, what it
    #: could not see and why); stored in the ledger for status and health
    conditions: LibraryConditions | None = None
    #: files that vanished because a built-in system folder name hides them now (an upgrade
    #: that added the name, or an ``ignore = ["!name"]`` removed): how many, which names
    ignored_now: int = 0
    ignored_names: list[str] = field(default_factory=list)
    #: of those files' items: how many go (no other copy) and how many another copy keeps
    ignored_items_deleted: int = 0
    ignored_items_kept: int = 0
    #: new or changed files read to hash them
    hashed: int = 0
    #: new or changed files whose content the ledger knew from another path (moved): not read
    reused: int = 0


@dataclass
class ScanResult:
    """What a scan of some libraries recorded (``syncd.plan.driver`` plans it next)."""

    libraries: list[LibraryScan]


def scan_libraries(
    ledger: Ledger,
    config: Config,
    names: Sequence[str] = (),
    *,
    allow_mass_delete: bool = False,
    now: float | None = None,
    progress: ProgressFactory | None = None,
    walks: WalkAhead | None = None,
) -> ScanResult:
    """Scan the libraries named (all when none), record them in the ledger.

    ``allow_mass_delete`` lets the held deletes of these libraries go and holds nothing
    new. ``progress(library, known_files)`` may return a callback told how many entries
    were walked. ``now`` (seconds since the epoch) defaults to the clock. ``walks``: walks
    already started in a child process (``start_walks``); libraries it lacks are walked here.
    """
    libraries = select_libraries(config, names)
    started = time.time() if now is None else now
    results = []
    for lib in libraries:
        results.append(
            scan_library(ledger, config, lib, started, allow_mass_delete, progress, walks)
        )
    return ScanResult(results)


def select_libraries(config: Config, names: Sequence[str]) -> list[LibraryConfig]:
    """The libraries named, in config order (all of them when ``names`` is empty).

    Raises ``KeyError`` naming a library the config does not have.
    """
    known = {lib.name for lib in config.libraries}
    for name in names:
        if name not in known:
            raise KeyError(name)
    return [lib for lib in config.libraries if not names or lib.name in names]


def scan_library(
    ledger: Ledger,
    config: Config,
    lib: LibraryConfig,
    now: float,
    allow_mass_delete: bool = False,
    progress: ProgressFactory | None = None,
    walks: WalkAhead | None = None,
    *,
    wait_for_writers: bool = True,
) -> LibraryScan:
    """Scan one whole library into the ledger (see the module docstring); ``now`` in seconds.
    Its walk is taken from ``walks`` when that has one, else done here. Files still being
    written are waited for a few rounds, or with ``wait_for_writers=False`` only reported."""
    with ledger.transaction() as session:
        row = ensure_library(session, lib)
        previous = load_conditions(session, row.id, lib.name)
    result = LibraryScan(lib.name, lib.gallery)
    if allow_mass_delete:
        with ledger.transaction() as session:
            result.released = release_holds(session, row.id, now, config.watch.delete_grace)
    index = load_index(ledger, row.id)
    known_files = len(index.signatures)
    tick = progress(lib, known_files) if progress is not None else None
    recorder = _Recorder(ledger, config, lib, row, index, result, now, wait_for_writers)
    flt = WalkFilter.for_library(lib, config.watch)
    root = os.fspath(lib.root)
    try:
        walk = walks.take(lib, config.watch) if walks is not None else None
        if walk is None:
            walk = walk_batches(lib.root, flt, lib.follow_symlinks)
        root_device = device_of(root)
        facts = _compare(walk, index, result, tick, recorder.look)
    except RootUnavailable as exc:
        result.unavailable = exc.reason
        result.unknown = known_files
        _log.warning("library %s: %s: nothing will be deleted", lib.name, exc.reason)
        missing = RootCondition(ROOT_UNAVAILABLE, exc.reason, known_files)
        _keep_conditions(ledger, row, previous, replace(previous, root=missing), now, result)
        return result
    finally:
        if tick is not None:
            tick.finish()
    recorder.finish()

    def count_under(path: str) -> int:
        with ledger.transaction() as session:
            return count_files_under(session, row.id, path)

    judgement = judge_unseen(
        previous,
        root=root,
        root_device=root_device,
        facts=facts,
        gone=sorted(index.signatures),
        known_files=known_files,
        seen=result.seen,
        skipped=result.skipped_count,
        flt=flt,
        allow_mass_delete=allow_mass_delete,
        count_under=count_under,
        exists=lambda path: os.path.lexists(os.path.join(root, path)),
    )
    result.unknown += judgement.kept
    if judgement.conditions.root is not None:
        result.unavailable = judgement.conditions.root.reason
    for line in judgement.warnings:
        _log.warning("library %s: %s", lib.name, line)
    if judgement.vanished:
        _vanish(
            ledger, config, lib, row, judgement.vanished, known_files, result, now,
            allow_mass_delete,
        )  # fmt: skip
    _keep_conditions(ledger, row, previous, judgement.conditions, now, result)
    _log_scan(lib, result, "")
    return result


def _keep_conditions(
    ledger: Ledger,
    row: LibraryRow,
    previous: LibraryConditions,
    conditions: LibraryConditions,
    now: float,
    result: LibraryScan,
) -> None:
    """Store the library's conditions after a scan (when they changed) and report them."""
    result.conditions = conditions
    if conditions != previous:
        with ledger.transaction() as session:
            store_conditions(session, row.id, conditions, now)


def scan_paths(
    ledger: Ledger,
    config: Config,
    looks: Sequence[LookAgain],
    *,
    now: float | None = None,
    progress: ProgressFactory | None = None,
) -> ScanResult:
    """Look again at these paths only (what settled in the watcher), record them; a
    ``full_rescan`` look scans its library whole.

    Each path is what the disk says it is now (one lstat): a file is compared, a folder
    walked, a gone path vanishes, and the ledger's rows at and below it follow (new,
    changed, unchanged, vanished), under the rules of a full scan. A library whose root
    is missing or unreadable vanishes nothing. A library that follows symlinks, or that
    would be left without files, is scanned whole instead (a symlink may lead anywhere in
    the root; an empty root sends no deletes). Files still being written are not waited
    for: they are left unrecorded in ``LibraryScan.settling_paths``. Libraries the config
    does not have are skipped. ``now`` (seconds since the epoch) defaults to the clock.
    """
    started = time.time() if now is None else now
    wanted: dict[str, list[str]] = {}
    for look in looks:
        paths = wanted.setdefault(look.library, [])
        paths += [""] if look.full_rescan else look.paths
    results = [
        scan_library_paths(ledger, config, lib, wanted[lib.name], started, progress)
        for lib in config.libraries
        if lib.name in wanted
    ]
    return ScanResult(results)


def scan_library_paths(
    ledger: Ledger,
    config: Config,
    lib: LibraryConfig,
    paths: Iterable[str],
    now: float,
    progress: ProgressFactory | None = None,
) -> LibraryScan:
    """Scan ``paths`` of one library (relative to its root) into the ledger; see
    :func:`scan_paths`. ``now`` in seconds since the epoch."""
    targets = _outermost(paths)
    if lib.follow_symlinks or "" in targets:
        return scan_library(ledger, config, lib, now, progress=progress, wait_for_writers=False)
    with ledger.transaction() as session:
        row = ensure_library(session, lib)
        previous = load_conditions(session, row.id, lib.name)
    if previous.root is not None:
        # the root was missing, empty or another filesystem: only a whole scan can judge it
        return scan_library(ledger, config, lib, now, progress=progress, wait_for_writers=False)
    result = LibraryScan(lib.name, lib.gallery)
    root = os.fspath(lib.root)
    try:
        root_fd = _open_root(root)
    except RootUnavailable as exc:
        result.unavailable = exc.reason
        _log.warning("library %s: %s: nothing will be deleted", lib.name, exc.reason)
        return result
    if previous.root_device not in (None, os.fstat(root_fd).st_dev):
        os.close(root_fd)
        return scan_library(ledger, config, lib, now, progress=progress, wait_for_writers=False)
    index = load_index(ledger, row.id, under=targets)
    tick = progress(lib, len(index.signatures)) if progress is not None else None
    recorder = _Recorder(ledger, config, lib, row, index, result, now, wait_for_writers=False)
    flt = WalkFilter.for_library(lib, config.watch)

    def count_under(path: str) -> int:
        with ledger.transaction() as session:
            return count_files_under(session, row.id, path)

    try:
        entries = _entries_at(root, root_fd, targets, flt, config)
        facts = _compare(entries, index, result, tick, recorder.look)
        changed, still_missing = look_at_mounts(
            previous,
            targets=targets,
            facts=facts,
            gone=index.signatures,
            flt=flt,
            is_mount=lambda path: _is_mount(root_fd, path),
            count_under=count_under,
        )
    finally:
        os.close(root_fd)
        if tick is not None:
            tick.finish()
    recorder.finish()
    if changed:
        # a mount point dropped, came back or appeared: a whole scan judges what it holds
        return _whole_instead(ledger, config, lib, now, progress, result)
    gone = _missing_keys(index, facts, still_missing, result)
    if gone:
        with ledger.transaction() as session:
            files_now = count_files(session, row.id)
        if files_now <= len(gone):
            # nothing would be left: only a walk of the whole root can tell an empty root
            return _whole_instead(ledger, config, lib, now, progress, result)
        # the rows this scan created were not files of the library before it
        known_files = files_now - result.new
        _vanish(ledger, config, lib, row, gone, known_files, result, now, False)
    conditions = _merge_unreadable(previous, targets, facts, index)
    if facts.unreadable:
        folders = unreadable_folders(facts.unreadable, _kept_below(index, facts))
        _log.warning("library %s: %s", lib.name, unreadable_warning(folders))
    _keep_conditions(ledger, row, previous, conditions, now, result)
    _log_scan(lib, result, f" (at {_count(len(targets), 'path')})")
    return result


def _whole_instead(
    ledger: Ledger,
    config: Config,
    lib: LibraryConfig,
    now: float,
    progress: ProgressFactory | None,
    part: LibraryScan,
) -> LibraryScan:
    """A whole scan of the library after a scan of some of its paths (``part``) found that
    only a whole one can judge what it saw; the files ``part`` read count as read."""
    whole = scan_library(ledger, config, lib, now, progress=progress, wait_for_writers=False)
    whole.hashed += part.hashed
    whole.reused += part.reused
    return whole


def _is_mount(root_fd: int, relpath: str) -> bool:
    """Whether the folder ``relpath`` (under the root) is on another device than its parent."""
    parts = relpath.split("/")
    try:
        st = _lstat_below(root_fd, parts)
        parent = _lstat_below(root_fd, parts[:-1]) if len(parts) > 1 else os.fstat(root_fd)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_dev != parent.st_dev


def _kept_below(index: LedgerIndex, facts: WalkFacts) -> dict[str, int]:
    """Stored paths not found, counted by the unreadable path of ``facts`` they lie under."""
    unreadable = {entry.relpath for entry in facts.unreadable}
    counts: dict[str, int] = {}
    for key in index.signatures:
        relpath = decode_relpath(key)
        for path in at_or_above(relpath):
            if path in unreadable:
                counts[path] = counts.get(path, 0) + 1
                break
    return counts


def _merge_unreadable(
    previous: LibraryConditions,
    targets: Sequence[str],
    facts: WalkFacts,
    index: LedgerIndex,
) -> LibraryConditions:
    """The library's conditions after a scan of ``targets``: what it could not read there
    replaces what the last scans could not read at and below them."""
    kept = [
        folder
        for folder in previous.unreadable
        if not any(at_or_below(folder.path, target) for target in targets)
    ]
    fresh = unreadable_folders(facts.unreadable, _kept_below(index, facts))
    merged = tuple(sorted((*kept, *fresh), key=lambda folder: folder.path))
    return replace(previous, unreadable=merged)


def _outermost(paths: Iterable[str]) -> list[str]:
    """The distinct paths, less those inside another of them; "" stands for the root."""
    chosen = set()
    for path in paths:
        parts = [part for part in path.split("/") if part not in ("", ".")]
        if ".." in parts:
            _log.warning("ignoring the path %s: it leaves the root", printable_relpath(path))
            continue
        chosen.add("/".join(parts))
    if "" in chosen:
        return [""]
    return sorted(
        path
        for path in chosen
        if not any("/".join(path.split("/")[:i]) in chosen for i in range(1, path.count("/") + 1))
    )


def _entries_at(
    root: str, root_fd: int, targets: Sequence[str], flt: WalkFilter, config: Config
) -> Iterator[FileEntry | SkippedEntry | MountPoint]:
    """What a full walk of the root (symlinks not followed) yields at and below ``targets``
    (a link to a folder is not reported as skipped here: it has no rows either way), with a
    target folder on another device than the folder above it as a ``MountPoint``."""
    # walks below a target pass every name but the ignored ones; the library's filter then
    # judges each path relative to the root, as the full walk does
    every_name = WalkFilter(ignore=ignore_globs(config.watch.ignore))
    for rel in targets:
        yield from _entries_at_path(root, root_fd, rel, flt, every_name)


def _entries_at_path(
    root: str, root_fd: int, rel: str, flt: WalkFilter, every_name: WalkFilter
) -> Iterator[FileEntry | SkippedEntry | MountPoint]:
    """What a full walk yields at and below ``rel``: nothing when it is gone or hidden."""
    parts = rel.split("/")
    if flt.hides_dir(rel.rpartition("/")[0]) or flt.ignores_name(parts[-1]):
        return
    try:
        st = _lstat_below(root_fd, parts)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return  # a folder on the way is a symlink: the walk does not follow it
        yield SkippedEntry(rel, f"cannot stat: {exc.strerror}", True)
        return
    if stat.S_ISDIR(st.st_mode):
        if not flt.hides_dir(rel):
            if _is_mount(root_fd, rel):
                yield MountPoint(rel, st.st_dev)
            yield from _walk_below(root, rel, flt, every_name)
    elif not flt.accepts(rel):
        return
    elif stat.S_ISREG(st.st_mode):
        yield FileEntry(rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    elif stat.S_ISLNK(st.st_mode):
        yield SkippedEntry(rel, "symlink (follow_symlinks = false)")
    else:
        yield SkippedEntry(rel, f"not a regular file: {_kind(st.st_mode)}")


def _lstat_below(root_fd: int, parts: Sequence[str]) -> os.stat_result:
    """lstat of the path ``parts`` under the root, through real folders only (no symlink)."""
    opened: list[int] = []
    try:
        fd = root_fd
        for part in parts[:-1]:
            fd = os.open(part, _DIR_NOFOLLOW, dir_fd=fd)
            opened.append(fd)
        return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
    finally:
        for fd in opened:
            os.close(fd)


def _walk_below(
    root: str, rel: str, flt: WalkFilter, every_name: WalkFilter
) -> Iterator[FileEntry | SkippedEntry | MountPoint]:
    """The full walk's entries below the folder ``rel``, with paths relative to the root."""
    top = os.path.join(root, rel)
    try:
        walk = walk_library(top, every_name)
    except RootUnavailable as exc:
        if os.path.lexists(top):  # not gone: what it holds is unknown, not vanished
            yield SkippedEntry(rel, exc.reason, True)
        return
    prefix = rel + "/"
    for entry in walk:
        path = prefix + entry.relpath
        if type(entry) is FileEntry:
            if flt.accepts(path):
                yield FileEntry(path, entry.size, entry.mtime_ns, entry.inode, entry.dev)
        elif type(entry) is MountPoint:
            if not flt.hides_dir(path):
                yield MountPoint(path, entry.dev)
        elif isinstance(entry, SkippedEntry):
            if entry.unreadable:
                if not flt.hides_dir(path):
                    yield SkippedEntry(path, entry.reason, True)
            elif flt.accepts(path):
                yield SkippedEntry(path, entry.reason)


def _log_scan(lib: LibraryConfig, result: LibraryScan, where: str) -> None:
    _log.info(
        "library %s%s: %s, %d new, %d changed, %d unchanged, %d vanished, %d held, "
        "%d skipped; %d read, %d known from another path",
        lib.name,
        where,
        _count(result.seen, "file"),
        result.new,
        result.changed,
        result.unchanged,
        result.vanished,
        result.held,
        result.skipped_count,
        result.hashed,
        result.reused,
    )


def _count(n: int, noun: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _compare(
    walk: Iterable[FileBatch | FileEntry | SkippedEntry | MountPoint],
    index: LedgerIndex,
    result: LibraryScan,
    tick: Progress | None,
    look: Callable[[list[FileEntry]], None],
) -> WalkFacts:
    """Walk against the index, handing new and changed files to ``look`` in batches of
    ``BATCH_ROWS`` (so a first scan never holds the whole tree); what the walk said besides
    its files (the paths it could not read, the mount points it walked).

    Seen paths leave ``index.signatures``, so what is left there has vanished. The hot
    loop of a no-change rescan: per ``FileBatch``, one C-level pass of ``dict.pop`` over its
    keys and one list comparison; no object is built for an unchanged file.
    """
    pop = index.signatures.pop
    changed: list[FileEntry] = []
    facts = WalkFacts()
    files = 0
    untold = 0  # entries walked since the last progress update
    for item in walk:
        if type(item) is FileBatch:
            keys, batch_signatures, devs = item
            files += len(keys)
            untold += len(keys)
            known = list(map(pop, keys, repeat(None)))
            if known != batch_signatures:
                for old, key, signature, dev in zip(
                    known, keys, batch_signatures, devs, strict=True
                ):
                    if old != signature:
                        if old is None:
                            result.new += 1
                        else:
                            result.changed += 1
                        changed.append(entry_of(key, signature, dev))
        elif type(item) is FileEntry:
            files += 1
            untold += 1
            relpath, size, mtime_ns, inode, _ = item
            old = pop(relpath.encode("utf-8", "surrogateescape"), None)
            if old != file_signature(size, mtime_ns, inode):
                if old is None:
                    result.new += 1
                else:
                    result.changed += 1
                changed.append(item)
        elif type(item) is MountPoint:
            facts.mounts[item.relpath] = item.dev
        else:
            assert isinstance(item, SkippedEntry)
            untold += 1
            result.skipped_count += 1
            if len(result.skipped) < KEEP_SKIPPED:
                result.skipped.append(item)
            _log.info(
                "library %s: skipped %s: %s",
                result.name,
                printable_relpath(item.relpath),
                item.reason,
            )
            if item.unreadable:
                facts.unreadable.append(item)
                result.unreadable += 1
        while len(changed) >= BATCH_ROWS:
            look(changed[:BATCH_ROWS])
            del changed[:BATCH_ROWS]
        if tick is not None and untold >= TICK_ENTRIES:
            tick.update(untold)
            untold = 0
    if changed:
        look(changed)
    if tick is not None and untold:
        tick.update(untold)
    result.seen = files
    result.unchanged = result.seen - result.new - result.changed
    return facts


class _Recorder:
    """Hashes, judges and records the new and changed files a scan hands it, in batches;
    files modified less than ``watch.settle`` ago are kept back: waited for a few
    rounds when ``wait_for_writers``, else reported in ``settling_paths``."""

    def __init__(
        self,
        ledger: Ledger,
        config: Config,
        lib: LibraryConfig,
        row: LibraryRow,
        index: LedgerIndex,
        result: LibraryScan,
        now: float,
        wait_for_writers: bool,
    ) -> None:
        self._ledger = ledger
        self._lib = lib
        self._row = row
        self._index = index
        self._result = result
        self._now = now
        self._settle = config.watch.settle
        self._wait = wait_for_writers
        self._unsettled: list[FileEntry] = []

    def look(self, entries: list[FileEntry]) -> None:
        """Record changed files, keeping back those still being written."""
        # the later of the two clocks: a file written during the scan is young, not from
        # the future (which counts as quiet)
        now = max(self._now, time.time())
        quiet: list[FileEntry] = []
        for entry in entries:
            writing = seconds_until_quiet(entry.mtime_ns, now, self._settle) > 0
            (self._unsettled if writing else quiet).append(entry)
        self._record(quiet)

    def finish(self) -> None:
        """Record the files kept back once they have settled (or report them)."""
        if not self._unsettled:
            return
        if not self._wait:
            _report_settling(self._lib, self._unsettled, self._result)
            self._unsettled = []
            return
        settled = _wait_until_settled(self._lib, self._unsettled, self._settle, self._result)
        self._unsettled = []
        for start in range(0, len(settled), BATCH_ROWS):
            self._record(settled[start : start + BATCH_ROWS])

    def _record(self, entries: list[FileEntry]) -> None:
        if entries:
            observations = _look_at(self._lib, entries, self._known(entries), self._result)
            with self._ledger.transaction() as session:
                record_observations(session, self._row, observations, self._now)

    def _known(self, entries: Sequence[FileEntry]) -> dict[FileIdentity, KnownContent]:
        """The contents the ledger knows for files with these entries' identities."""
        wanted = {file_signature(e.size, e.mtime_ns, e.inode) for e in entries}
        # rows the walk has not found (yet) with the same stat: their file may be this one
        elsewhere = [key for key, sig in self._index.signatures.items() if sig in wanted]
        with self._ledger.transaction() as session:
            return known_contents(session, self._row.id, {_identity(e) for e in entries}, elsewhere)


def _identity(entry: FileEntry) -> FileIdentity:
    return file_identity(entry.dev, entry.inode, entry.size, entry.mtime_ns)


def _wait_until_settled(
    lib: LibraryConfig, waiting: list[FileEntry], settle: float, result: LibraryScan
) -> list[FileEntry]:
    """Files modified less than ``settle`` seconds ago, once each has been quiet that long
    (docs/rules.md, Settle), for the one-shot commands, which have no watcher to look again
    later. Files still changing after a few rounds are left for the next scan.
    """
    ready: list[FileEntry] = []
    for _ in range(SETTLE_ROUNDS):
        if not waiting:
            break
        now = time.time()
        time.sleep(max(seconds_until_quiet(e.mtime_ns, now, settle) for e in waiting))
        still: list[FileEntry] = []
        for entry in waiting:
            try:
                st = os.lstat(os.path.join(lib.root, entry.relpath))
            except OSError:
                continue  # gone meanwhile: the next scan sees it vanished
            again = FileEntry(entry.relpath, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
            (ready if again == entry else still).append(again)
        waiting = still
    _report_settling(lib, waiting, result)
    return ready


def _report_settling(lib: LibraryConfig, waiting: list[FileEntry], result: LibraryScan) -> None:
    """Note the files still being written in the result (not recorded: a later look reads them)."""
    result.settling += len(waiting)
    result.settling_paths += [entry.relpath for entry in waiting]
    for entry in waiting[:KEEP_SETTLING_LOGGED]:
        _log.info(
            "library %s: %s is still being written", lib.name, printable_relpath(entry.relpath)
        )
    if len(waiting) > KEEP_SETTLING_LOGGED:
        more = len(waiting) - KEEP_SETTLING_LOGGED
        _log.info("library %s: … and %d more files still being written", lib.name, more)


def _look_at(
    lib: LibraryConfig,
    entries: Sequence[FileEntry],
    known: dict[FileIdentity, KnownContent],
    result: LibraryScan,
) -> list[Observation]:
    """Hash and judge these files (hashing on a thread pool), except those whose content
    ``known`` gives."""
    root = os.fspath(lib.root)
    unread = [(n, e) for n, e in enumerate(entries) if _identity(e) not in known]
    digests: dict[int, str | Exception] = {}
    if unread:
        from syncd.scan.hashing import hash_files  # only a scan that found changes needs it

        paths = ((n, os.path.join(root, e.relpath)) for n, e in unread)
        digests = dict(hash_files(paths, workers=HASH_WORKERS))
        result.hashed += len(unread)
    observations = []
    for n, entry in enumerate(entries):
        reason: str | None
        content_hash: str | None
        content = known.get(_identity(entry))
        if content is not None:
            result.reused += 1
            verdict, reason, content_hash = content.verdict, content.reason, content.content_hash
            if verdict == VERDICT_REJECTED:
                result.rejected += 1
        elif isinstance(digest := digests[n], Exception):
            reason = f"cannot read: {getattr(digest, 'strerror', None) or digest}"
            verdict, content_hash = VERDICT_SKIPPED, None
            result.unreadable += 1
            _log.warning("library %s: %s: %s", lib.name, printable_relpath(entry.relpath), reason)
        else:
            content_hash = digest
            verdict, reason = _judge(lib, os.path.join(root, entry.relpath))
            if verdict == VERDICT_REJECTED:
                result.rejected += 1
                _log.info("library %s: %s: %s", lib.name, printable_relpath(entry.relpath), reason)
        observations.append(
            Observation(
                entry.relpath,
                entry.size,
                entry.mtime_ns,
                entry.inode,
                content_hash,
                verdict,
                reason,
                entry.dev,
            )
        )
    return observations


def _judge(lib: LibraryConfig, path: str) -> tuple[str, str | None]:
    """(verdict, reason) of the image at ``path`` from its header (docs/rules.md, Image
    preparation)."""
    from syncd.scan.prepare import ImageRejected, inspect_image  # Pillow: only for changes

    try:
        inspect_image(path, lib.oversize)
    except ImageRejected as exc:
        return VERDICT_REJECTED, exc.reason
    except OSError as exc:
        return VERDICT_SKIPPED, f"cannot read: {exc.strerror or exc}"
    return VERDICT_OK, None


def _vanish(
    ledger: Ledger,
    config: Config,
    lib: LibraryConfig,
    row: LibraryRow,
    gone: list[bytes],
    known_files: int,
    result: LibraryScan,
    now: float,
    allow_mass_delete: bool,
) -> None:
    """Mark the stored paths ``gone`` vanished; hold their deletes when they are too many of
    the ``known_files`` the library had (docs/rules.md, Mass deletes).

    Paths in a built-in system folder (a thumbnail cache, a recycle bin: files the library
    no longer takes, not files a person deleted) vanish without being held, and the log
    says what becomes of their items.
    """
    litter = WalkFilter(ignore=system_folders_in_force(config.watch.ignore))
    ignored: list[bytes] = []
    names: set[str] = set()
    deleted: list[bytes] = []
    for key in gone:
        name = litter.ignored_part(decode_relpath(key))
        if name is None:
            deleted.append(key)
        else:
            ignored.append(key)
            names.add(name)
    _record_vanished(ledger, row, deleted, now, result)
    if deleted and not allow_mass_delete:
        with ledger.transaction() as session:
            result.held = hold_mass_vanish(
                session,
                row,
                known_files - len(ignored),
                now,
                config.watch.delete_grace,
                config.safety.max_delete_fraction,
            )
        if result.held:
            _log.warning(
                "library %s: %d of %d files vanished in one scan: their deletes are held "
                "(`syncd reconcile --allow-mass-delete` lets them go)",
                lib.name,
                result.held,
                known_files - len(ignored),
            )
    if ignored:
        _record_vanished(ledger, row, ignored, now, result)
        with ledger.transaction() as session:
            left = items_left_by(session, row, ignored)
        result.ignored_now = len(ignored)
        result.ignored_names = sorted(names, key=str.lower)
        result.ignored_items_deleted = left.deleted
        result.ignored_items_kept = left.kept
        _log.warning(
            "library %s: %d file%s now ignored as NAS and OS system folders (%s): %d item%s "
            "to delete, %d kept as other copies exist",
            lib.name,
            len(ignored),
            " is" if len(ignored) == 1 else "s are",
            ", ".join(result.ignored_names),
            left.deleted,
            "" if left.deleted == 1 else "s",
            left.kept,
        )


def _record_vanished(
    ledger: Ledger, row: LibraryRow, keys: list[bytes], now: float, result: LibraryScan
) -> None:
    for start in range(0, len(keys), BATCH_ROWS):
        with ledger.transaction() as session:
            result.vanished += record_vanished(session, row, keys[start : start + BATCH_ROWS], now)


def _missing_keys(
    index: LedgerIndex, facts: WalkFacts, missing_mounts: Collection[str], result: LibraryScan
) -> list[bytes]:
    """Stored paths the walk did not find, less those under paths it could not read and
    under the mount points ``missing_mounts`` (unknown, not vanished: counted in
    ``result.unknown``)."""
    unseen = {entry.relpath for entry in facts.unreadable} | set(missing_mounts)
    if not unseen:
        return sorted(index.signatures)
    keep = [
        key
        for key in index.signatures
        if not any(path in unseen for path in at_or_above(decode_relpath(key)))
    ]
    result.unknown += len(index.signatures) - len(keep)
    return sorted(keep)
