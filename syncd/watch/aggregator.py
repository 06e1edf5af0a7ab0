"""Settle and coalesce filesystem events into batches of quiet paths (SPEC §2.4, §4).

Events are hints, not truth: the aggregator only decides *when* a path is worth a look.
It remembers each touched path with a deadline `settle` seconds after its last event;
at the deadline it stats the path once, and a path whose mtime is younger than `settle`
(or whose size/mtime moved since the previous look) waits again. Paths inside a directory
that is itself waiting (created or moved in) are absorbed into it, so a 10,000-file copy
into a new folder becomes one subtree to scan. Ignored names never get in. What a path
*is* (present file, present directory, gone) is read from the disk at the deadline, not
from the event kind.
"""

from __future__ import annotations

import heapq
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from syncd.paths import WalkFilter

EventKind = Literal["created", "modified", "deleted", "moved"]

#: accept(relative posix path, is_directory) -> whether the library cares about that path
PathFilter = Callable[[str, bool], bool]


class Clock(Protocol):
    """Time source: monotonic seconds for deadlines, wall seconds to judge file mtimes."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


@dataclass(frozen=True)
class PathEvent:
    """One filesystem event, as absolute paths; `dest` only for moves."""

    kind: EventKind
    path: str
    is_directory: bool
    dest: str = ""


@dataclass(frozen=True)
class WatchRoot:
    """A library root the aggregator maps events to, with the library's path filter."""

    library: str
    root: str
    accept: PathFilter


@dataclass(frozen=True)
class MoveHint:
    """A move the watcher saw; the scanner may use it, the disk stays the truth."""

    src_library: str
    src: str
    dst_library: str
    dst: str
    is_directory: bool


@dataclass(frozen=True)
class LibraryChanges:
    """What settled in one library: relative posix paths, sorted."""

    library: str
    #: regular files present and quiet: re-stat (and read if changed)
    files: tuple[str, ...] = ()
    #: directories present and quiet: scan everything below
    subtrees: tuple[str, ...] = ()
    #: paths (files or directories) no longer on disk: everything the ledger has there vanished
    vanished: tuple[str, ...] = ()
    #: the whole library needs a rescan (overflow, root came back, observer failure)
    full_rescan: bool = False


@dataclass(frozen=True)
class SettledBatch:
    """One batch of settled work, grouped by library."""

    libraries: tuple[LibraryChanges, ...]
    moves: tuple[MoveHint, ...] = ()

    @property
    def path_count(self) -> int:
        """Number of paths (files, subtrees, vanished) in the batch."""
        return sum(len(c.files) + len(c.subtrees) + len(c.vanished) for c in self.libraries)


@dataclass
class _Pending:
    """A path waiting to settle."""

    deadline: float
    is_directory: bool
    #: (size, mtime_ns) seen at the previous deadline, to notice writes without events
    seen: tuple[int, int] | None = None


@dataclass
class _LibraryState:
    root: WatchRoot
    #: relative path -> pending entry; "" is never stored (the root itself is the rescan flag)
    pending: dict[str, _Pending] = field(default_factory=dict)
    rescan_deadline: float | None = None


def library_path_filter(flt: WalkFilter) -> PathFilter:
    """The watcher's view of a library's filter: files as the scan takes them; directories
    unless an ignore glob hides a component or an exclude prunes them."""

    def accept(rel: str, is_dir: bool) -> bool:
        if not is_dir:
            return flt.accepts(rel)
        parts = rel.split("/")
        if any(flt.ignores_name(part) for part in parts):
            return False
        return not any(flt.prunes_dir("/".join(parts[:i])) for i in range(1, len(parts) + 1))

    return accept


class SettleAggregator:
    """Thread-safe settle/coalesce stage between the observers and the scanner.

    `touch` is called from observer threads; `wait_batch` from the one consumer. Nothing
    polls: the consumer sleeps on a Condition until the earliest deadline or new work.
    """

    def __init__(
        self,
        settle: float,
        roots: Iterable[WatchRoot] = (),
        clock: Clock | None = None,
    ) -> None:
        """`settle`: seconds a path must be quiet before it is handed out."""
        self._settle = max(0.0, settle)
        self._clock: Clock = clock or SystemClock()
        self._cond = threading.Condition(threading.Lock())
        self._libs: dict[str, _LibraryState] = {}
        self._moves: list[MoveHint] = []
        #: (deadline, library, rel) for every deadline ever set; stale ones are skipped
        self._heap: list[tuple[float, str, str]] = []
        self._closed = False
        self._kicked = False
        self.set_roots(roots)

    # -- configuration -------------------------------------------------------------------

    @property
    def settle(self) -> float:
        """Seconds a path must be quiet."""
        return self._settle

    def set_settle(self, settle: float) -> None:
        """Change the settle time (config reload); applies to events from now on."""
        with self._cond:
            self._settle = max(0.0, settle)

    def set_roots(self, roots: Iterable[WatchRoot]) -> None:
        """Replace the set of watched roots; pending work of removed libraries is dropped."""
        new = {r.library: r for r in roots}
        with self._cond:
            for name in list(self._libs):
                if name not in new:
                    del self._libs[name]
            self._moves = [m for m in self._moves if m.src_library in new and m.dst_library in new]
            for name, root in new.items():
                state = self._libs.get(name)
                if state is None or state.root.root != root.root:
                    self._libs[name] = _LibraryState(root=root)
                else:
                    state.root = root
            self._cond.notify_all()

    # -- producers -----------------------------------------------------------------------

    def touch(self, event: PathEvent) -> None:
        """Record one event; cheap (no I/O), called from observer threads."""
        with self._cond:
            if self._closed:
                return
            now = self._clock.monotonic()
            if event.kind == "moved":
                src_hits = self._touch_path(event.path, event.is_directory, now)
                dst_hits = self._touch_path(event.dest, event.is_directory, now)
                # a move inside a moving directory is covered by the directory's own hint
                for src_lib, src_rel, src_absorbed in src_hits:
                    for dst_lib, dst_rel, dst_absorbed in dst_hits:
                        if not (src_absorbed and dst_absorbed):
                            self._moves.append(
                                MoveHint(src_lib, src_rel, dst_lib, dst_rel, event.is_directory)
                            )
            else:
                self._touch_path(event.path, event.is_directory, now)
            self._cond.notify_all()

    def request_rescan(self, library: str, *, immediate: bool = False) -> None:
        """Ask for a full rescan of a library after it has been quiet for `settle`
        (or at once with `immediate`); repeated requests coalesce."""
        with self._cond:
            state = self._libs.get(library)
            if state is None or self._closed:
                return
            now = self._clock.monotonic()
            state.pending.clear()  # the rescan covers them
            state.rescan_deadline = now if immediate else now + self._settle
            self._arm(library, "", state.rescan_deadline)
            self._cond.notify_all()

    def wake(self) -> None:
        """Make a waiting `wait_batch` return now (with a batch if one is due, else None)."""
        with self._cond:
            self._kicked = True
            self._cond.notify_all()

    def close(self) -> None:
        """Wake and release the consumer; later events are dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- consumer ------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Paths waiting to settle (plus pending full rescans); read without the lock, so a
        status line never waits behind a stat on a slow mount."""
        libs = list(dict(self._libs).values())
        return sum(len(s.pending) + (s.rescan_deadline is not None) for s in libs)

    def next_deadline(self) -> float | None:
        """Earliest monotonic deadline, or None when nothing waits."""
        with self._cond:
            return self._next_deadline()

    def take_due(self) -> SettledBatch | None:
        """Hand out every path whose deadline has passed and that proved quiet, or None."""
        with self._cond:
            return self._take_due(self._clock.monotonic())

    def wait_batch(self, timeout: float | None) -> SettledBatch | None:
        """Block up to `timeout` seconds (None = until closed) for the next settled batch."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                batch = self._take_due(self._clock.monotonic())
                if batch is not None or self._kicked:
                    self._kicked = False
                    return batch
                wait: float | None = None
                deadline = self._next_deadline()
                if deadline is not None:
                    wait = max(0.0, deadline - self._clock.monotonic())
                if end is not None:
                    left = end - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
            return None

    # -- internals (lock held) -----------------------------------------------------------

    def _next_deadline(self) -> float | None:
        heap = self._heap
        while heap and not self._is_live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _is_live(self, item: tuple[float, str, str]) -> bool:
        deadline, library, rel = item
        state = self._libs.get(library)
        if state is None:
            return False
        if rel == "":
            return state.rescan_deadline == deadline
        entry = state.pending.get(rel)
        return entry is not None and entry.deadline == deadline

    def _arm(self, library: str, rel: str, deadline: float) -> None:
        heapq.heappush(self._heap, (deadline, library, rel))

    def _touch_path(self, path: str, is_dir: bool, now: float) -> list[tuple[str, str, bool]]:
        """Note `path` in every library whose root holds it.

        Returns (library, rel, absorbed) for each library that cares, `absorbed` when a
        waiting ancestor directory already covers the path."""
        hits: list[tuple[str, str, bool]] = []
        if not path:
            return hits
        deadline = now + self._settle
        for name, state in self._libs.items():
            rel = _relative(path, state.root.root)
            # the root itself is the supervisor's business; its own mtime says nothing
            if not rel or not state.root.accept(rel, is_dir):
                continue
            if state.rescan_deadline is not None:
                # a full rescan is coming: it waits for this burst to end too
                state.rescan_deadline = max(state.rescan_deadline, deadline)
                self._arm(name, "", state.rescan_deadline)
                hits.append((name, rel, True))
                continue
            key = _ancestor_key(state.pending, rel)
            absorbed = bool(key)
            entry = state.pending.get(key or rel)
            if entry is None:
                if is_dir:
                    # the directory's scan covers what was waiting below it
                    prefix = rel + "/"
                    for below in [k for k in state.pending if k.startswith(prefix)]:
                        del state.pending[below]
                entry = _Pending(deadline=deadline, is_directory=is_dir)
                state.pending[rel] = entry
            elif not absorbed:
                entry.is_directory = entry.is_directory or is_dir
            entry.deadline = deadline
            entry.seen = None
            self._arm(name, key or rel, deadline)
            hits.append((name, rel, absorbed))
        return hits

    def _take_due(self, now: float) -> SettledBatch | None:
        wall = self._clock.wall()
        found: dict[str, tuple[list[str], list[str], list[str]]] = {}
        rescans: set[str] = set()
        heap = self._heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)
            if not self._is_live(item):
                continue
            _, name, rel = item
            state = self._libs[name]
            if rel == "":
                state.rescan_deadline = None
                state.pending.clear()
                rescans.add(name)
                found.pop(name, None)
                continue
            entry = state.pending[rel]
            verdict = self._judge(state.root.root, rel, entry, now, wall)
            if verdict is None:
                self._arm(name, rel, entry.deadline)
                continue
            del state.pending[rel]
            files, subtrees, vanished = found.setdefault(name, ([], [], []))
            {"file": files, "dir": subtrees, "gone": vanished}[verdict].append(rel)
        if not found and not rescans:
            return None
        out = [LibraryChanges(library=name, full_rescan=True) for name in sorted(rescans)]
        for name, (files, subtrees, vanished) in sorted(found.items()):
            out.append(
                LibraryChanges(
                    library=name,
                    files=tuple(sorted(files)),
                    subtrees=tuple(sorted(subtrees)),
                    vanished=tuple(sorted(vanished)),
                )
            )
        listed = {c.library for c in out}
        moves = tuple(m for m in self._moves if m.dst_library in listed)
        self._moves = [m for m in self._moves if m.dst_library not in listed]
        return SettledBatch(libraries=tuple(out), moves=moves)

    def _judge(
        self, root: str, rel: str, entry: _Pending, now: float, wall: float
    ) -> Literal["file", "dir", "gone"] | None:
        """Stat at the deadline: the disk says what the path is, and whether it is quiet.
        None means 'not quiet yet' (the entry's deadline has been moved on)."""
        try:
            st = os.lstat(os.path.join(root, *rel.split("/")))
        except (FileNotFoundError, NotADirectoryError):
            return "gone"
        except OSError:
            # unreadable now: let the scanner record why
            return "dir" if entry.is_directory else "file"
        if stat.S_ISDIR(st.st_mode):
            kind: Literal["file", "dir"] = "dir"
        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            kind = "file"
        else:
            return "gone"  # a fifo or socket is no image: whatever was here is gone
        seen = (st.st_size, st.st_mtime_ns)
        if entry.seen is not None and entry.seen != seen:
            # it changed since the last look without an event reaching us
            entry.seen = seen
            entry.deadline = now + self._settle
            return None
        age = wall - st.st_mtime_ns / 1e9
        if 0 <= age < self._settle:
            # written less than `settle` ago: wait until it is that old
            entry.seen = seen
            entry.deadline = now + (self._settle - age)
            return None
        return kind


def _relative(path: str, root: str) -> str | None:
    """Relative posix path of `path` under `root`, "" for the root, None outside it."""
    root = root.rstrip(os.sep) or os.sep
    if path == root:
        return ""
    prefix = root if root.endswith(os.sep) else root + os.sep
    if not path.startswith(prefix):
        return None
    rel = path[len(prefix) :]
    return rel.replace(os.sep, "/") if os.sep != "/" else rel


def _ancestor_key(pending: Mapping[str, _Pending], rel: str) -> str:
    """Key of the waiting directory entry that covers `rel`, "" if none."""
    parts = rel.split("/")
    for i in range(1, len(parts)):
        key = "/".join(parts[:i])
        entry = pending.get(key)
        if entry is not None and entry.is_directory:
            return key
    return ""
