"""Scanning libraries into the ledger: walk, compare, hash what changed, judge, record, plan.

Per library: stream the walk against a compact index of the ledger's rows; a file whose
size, mtime_ns and inode match its row costs nothing more (SPEC §2.10). Changed and new
files are hashed on a thread pool and checked as images (header only), and their rows
are written in batches together with the planner's queue. Files the walk no longer finds
vanish, unless the root is missing, unreadable or empty (no deletes, SPEC §2.8), and a
scan that vanishes too much of a library holds those deletes. The planner then turns
the queued contents into item intents.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from syncd.config import Config, LibraryConfig, TagRule
from syncd.ledger.files import (
    LedgerIndex,
    LibraryRow,
    Observation,
    ensure_library,
    hold_mass_vanish,
    load_index,
    record_observations,
    record_vanished,
    release_holds,
)
from syncd.ledger.intents import ReplanStats, replan
from syncd.ledger.models import VERDICT_OK, VERDICT_REJECTED, VERDICT_SKIPPED, encode_relpath
from syncd.ledger.report import PlanSummary, summarize_plan
from syncd.ledger.schema import Ledger
from syncd.scan.walk import (
    FileEntry,
    RootUnavailable,
    SkippedEntry,
    WalkFilter,
    printable_relpath,
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
    #: vanished files whose deletes are held (more than max_delete_fraction vanished)
    held: int = 0
    #: held deletes let go by allow_mass_delete
    released: int = 0
    rejected: int = 0
    unreadable: int = 0
    #: files still being written (quiet for less than watch.settle): left for the next scan
    settling: int = 0
    skipped_count: int = 0
    skipped: list[SkippedEntry] = field(default_factory=list)
    #: files the ledger knew that could not be looked at: neither seen nor vanished
    unknown: int = 0
    #: why the root could not be scanned (missing, unreadable, empty): nothing vanished
    unavailable: str | None = None


@dataclass
class ScanResult:
    """A scan of some libraries and the planner run after it."""

    libraries: list[LibraryScan]
    plan: ReplanStats


def scan_libraries(
    ledger: Ledger,
    config: Config,
    names: Sequence[str] = (),
    *,
    allow_mass_delete: bool = False,
    now: float | None = None,
    progress: ProgressFactory | None = None,
) -> ScanResult:
    """Scan the libraries named (all when none), record them in the ledger, plan intents.

    ``allow_mass_delete`` lets the held deletes of these libraries go and holds nothing
    new. ``progress(library, known_files)`` may return a callback told how many entries
    were walked. ``now`` (seconds since the epoch) defaults to the clock.
    """
    libraries = select_libraries(config, names)
    started = time.time() if now is None else now
    results = []
    for lib in libraries:
        results.append(scan_library(ledger, config, lib, started, allow_mass_delete, progress))
    rules: dict[str, Sequence[TagRule]] = {lib.name: lib.rules for lib in config.libraries}
    stats = replan(ledger, rules, started, config.watch.delete_grace)
    return ScanResult(results, stats)


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
) -> LibraryScan:
    """Scan one library into the ledger (see the module docstring); ``now`` in seconds."""
    with ledger.transaction() as session:
        row = ensure_library(session, lib)
    result = LibraryScan(lib.name, lib.gallery)
    if allow_mass_delete:
        with ledger.transaction() as session:
            result.released = release_holds(session, row.id, now, config.watch.delete_grace)
    index = load_index(ledger, row.id)
    known_files = len(index.signatures)
    tick = progress(lib, known_files) if progress is not None else None
    quiet_since_ns = int((now - config.watch.settle) * 1e9)
    unsettled: list[FileEntry] = []

    def record(entries: list[FileEntry]) -> None:
        """Hash, judge and record a batch of changed files."""
        if entries:
            observations = _look_at(lib, entries, result)
            with ledger.transaction() as session:
                record_observations(session, row, observations, now)

    def look(entries: list[FileEntry]) -> None:
        """Record changed files, keeping back those still being written."""
        record([e for e in entries if e.mtime_ns <= quiet_since_ns])
        unsettled.extend(e for e in entries if e.mtime_ns > quiet_since_ns)

    try:
        walk = walk_library(
            lib.root, WalkFilter.for_library(lib, config.watch), lib.follow_symlinks
        )
        unknown_prefixes = _compare(walk, index, result, tick, look)
    except RootUnavailable as exc:
        result.unavailable = exc.reason
        _log.warning("library %s: %s: nothing will be deleted", lib.name, exc.reason)
        return result
    finally:
        if tick is not None:
            tick.finish()
    if unsettled:
        settled = _wait_until_settled(lib, unsettled, config.watch.settle, result)
        for start in range(0, len(settled), BATCH_ROWS):
            record(settled[start : start + BATCH_ROWS])
    _vanish(
        ledger,
        config,
        lib,
        row,
        index,
        known_files,
        unknown_prefixes,
        result,
        now,
        allow_mass_delete,
    )
    _log.info(
        "library %s: %d files, %d new, %d changed, %d unchanged, %d vanished, %d held, %d skipped",
        lib.name,
        result.seen,
        result.new,
        result.changed,
        result.unchanged,
        result.vanished,
        result.held,
        result.skipped_count,
    )
    return result


def _compare(
    walk: Iterable[FileEntry | SkippedEntry],
    index: LedgerIndex,
    result: LibraryScan,
    tick: Progress | None,
    look: Callable[[list[FileEntry]], None],
) -> list[str]:
    """Walk against the index, handing new and changed files to ``look`` in batches of
    ``BATCH_ROWS`` (so a first scan never holds the whole tree); the unreadable paths.

    Seen paths leave ``index.signatures``, so what is left there has vanished. The hot
    loop of a no-change rescan: one dict lookup per file, no allocation beyond the key.
    """
    signatures = index.signatures
    pop = signatures.pop
    changed: list[FileEntry] = []
    unreadable: list[str] = []
    walked = 0
    file_entry = FileEntry
    for entry in walk:
        walked += 1
        if tick is not None and walked % 1000 == 0:
            tick.update(1000)
        if type(entry) is file_entry:
            known = pop(entry.relpath.encode("utf-8", "surrogateescape"), None)
            # stat_signature inlined (size and st_ino are unsigned 64-bit already)
            if known == (entry.mtime_ns << 128) | (entry.size << 64) | entry.inode:
                continue
            if known is None:
                result.new += 1
            else:
                result.changed += 1
            changed.append(entry)
            if len(changed) >= BATCH_ROWS:
                look(changed)
                changed = []
        else:
            assert isinstance(entry, SkippedEntry)
            result.skipped_count += 1
            if len(result.skipped) < KEEP_SKIPPED:
                result.skipped.append(entry)
            _log.info(
                "library %s: skipped %s: %s",
                result.name,
                printable_relpath(entry.relpath),
                entry.reason,
            )
            if entry.unreadable:
                unreadable.append(entry.relpath)
                result.unreadable += 1
    if tick is not None:
        tick.update(walked % 1000)
    if changed:
        look(changed)
    result.seen = walked - result.skipped_count
    result.unchanged = result.seen - result.new - result.changed
    return unreadable


def _wait_until_settled(
    lib: LibraryConfig, waiting: list[FileEntry], settle: float, result: LibraryScan
) -> list[FileEntry]:
    """Files modified less than ``settle`` seconds ago, once each has been quiet that long
    (SPEC §4). Files still changing after a few rounds are left for the next scan.
    """
    ready: list[FileEntry] = []
    for _ in range(SETTLE_ROUNDS):
        if not waiting:
            break
        newest = max(e.mtime_ns for e in waiting) / 1e9
        time.sleep(min(settle, max(0.0, newest + settle - time.time())))
        still: list[FileEntry] = []
        for entry in waiting:
            try:
                st = os.lstat(os.path.join(lib.root, entry.relpath))
            except OSError:
                continue  # gone meanwhile: the next scan sees it vanished
            again = FileEntry(entry.relpath, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
            (ready if again == entry else still).append(again)
        waiting = still
    result.settling = len(waiting)
    for entry in waiting:
        _log.info(
            "library %s: %s is still being written", lib.name, printable_relpath(entry.relpath)
        )
    return ready


def _look_at(
    lib: LibraryConfig, entries: Sequence[FileEntry], result: LibraryScan
) -> list[Observation]:
    """Hash and judge these files (hashing on a thread pool)."""
    from syncd.scan.hashing import hash_files  # only a scan that found changes needs it

    root = os.fspath(lib.root)
    paths = ((n, os.path.join(root, e.relpath)) for n, e in enumerate(entries))
    digests: dict[int, str | Exception] = dict(hash_files(paths, workers=HASH_WORKERS))
    observations = []
    for n, entry in enumerate(entries):
        digest = digests[n]
        reason: str | None
        content_hash: str | None
        if isinstance(digest, Exception):
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
            )
        )
    return observations


def _judge(lib: LibraryConfig, path: str) -> tuple[str, str | None]:
    """(verdict, reason) of the image at ``path`` from its header (SPEC §4)."""
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
    index: LedgerIndex,
    known_files: int,
    unreadable: list[str],
    result: LibraryScan,
    now: float,
    allow_mass_delete: bool,
) -> None:
    """Mark what the walk did not find as vanished, unless the scan cannot be trusted."""
    gone = _missing_keys(index, unreadable, result)
    if not gone:
        return
    if result.seen == 0 and result.skipped_count == 0:
        result.unavailable = f"library root {lib.root} is empty"
        result.unknown += len(gone)
        _log.warning(
            "library %s: the root is empty but the ledger knows %d files: nothing will be "
            "deleted (is the share mounted?)",
            lib.name,
            len(gone),
        )
        return
    for start in range(0, len(gone), BATCH_ROWS):
        with ledger.transaction() as session:
            result.vanished += record_vanished(session, row, gone[start : start + BATCH_ROWS], now)
    if allow_mass_delete:
        return
    with ledger.transaction() as session:
        result.held = hold_mass_vanish(
            session,
            row,
            known_files,
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
            known_files,
        )


def _missing_keys(index: LedgerIndex, unreadable: list[str], result: LibraryScan) -> list[bytes]:
    """Stored paths the walk did not find, less those under paths it could not read."""
    left: Iterator[bytes] = iter(index.signatures)
    if unreadable:
        prefixes = tuple(encode_relpath(p) for p in unreadable)
        below = tuple(p + b"/" for p in prefixes)
        keep = [k for k in left if k not in prefixes and not k.startswith(below)]
        result.unknown += len(index.signatures) - len(keep)
        return sorted(keep)
    return sorted(left)


@dataclass
class DryRun:
    """``reconcile --dry-run``: the scan, then the pending intents it left in the ledger."""

    scan: ScanResult
    plan: PlanSummary
    #: held deletes shown as what ``--allow-mass-delete`` would let go (never let go here)
    would_release: bool


def dry_run(
    ledger: Ledger,
    config: Config,
    names: Sequence[str] = (),
    *,
    allow_mass_delete: bool = False,
    limit: int = 10,
    progress: ProgressFactory | None = None,
) -> DryRun:
    """Scan (file rows and intents are the ledger's memory), call nothing, summarise the plan.

    Held deletes stay held even with ``allow_mass_delete``: a dry run only says what that
    flag would let go.
    """
    scan = scan_libraries(ledger, config, names, progress=progress)
    with ledger.transaction() as session:
        summary = summarize_plan(session, names, limit)
    return DryRun(scan, summary, allow_mass_delete)
