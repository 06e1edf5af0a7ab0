"""Settle and coalesce filesystem events into batches of quiet paths (`watch.settle`).

Events are hints, not truth: the aggregator only decides *when* a path is worth a look.
It remembers each touched path with a deadline `settle` seconds after its last event;
at the deadline it stats the path once, and a path whose mtime is younger than `settle`
(``syncd.paths.handoff.seconds_until_quiet``) or whose size/mtime moved since the previous look
waits again. Paths inside a directory that is itself waiting (created or moved in) are
absorbed into it, so a 10,000-file copy into a new folder becomes one path to scan.
Ignored names never get in. A move is its source and its destination. The output is
batches of ``syncd.paths.handoff.LookAgain``: what a path *is* now (file, folder, gone) is the
scan's to read from the disk, not the event kind's.
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

from syncd.paths.filters import WalkFilter
from syncd.paths.handoff import LookAgain, seconds_until_quiet

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


#: one batch of settled work: at most one LookAgain per library, full rescans first, paths sorted
SettledBatch = tuple[LookAgain, ...]


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
    """The watcher's view of a library's filter: files the walk takes, folders it enters."""
    return flt.accepts_path


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
            deadline = self._clock.monotonic() + self._settle
            # a move is two paths to look at: the scan finds the file at its new path by
            # its identity, so the content is not read again (a rename costs one update)
            for path in (event.path, event.dest) if event.kind == "moved" else (event.path,):
                self._touch_path(path, event.is_directory, deadline)
            self._cond.notify_all()

    def look_again_when_quiet(self, look: LookAgain) -> None:
        """Hand back files a scan found still being written: each comes out again once it
        has been quiet for `settle` (judged from its mtime at once, so no settle is added to
        what is left). A path already waiting keeps its deadline."""
        with self._cond:
            state = self._libs.get(look.library)
            if state is None or self._closed:
                return
            if state.rescan_deadline is not None:
                return  # the coming full rescan looks at them
            now = self._clock.monotonic()
            for rel in look.paths:
                if rel and rel not in state.pending and not _ancestor_key(state.pending, rel):
                    state.pending[rel] = _Pending(deadline=now, is_directory=False)
                    self._arm(look.library, rel, now)
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

    def _touch_path(self, path: str, is_dir: bool, deadline: float) -> None:
        """Note `path` in every library whose root holds it, due at `deadline`."""
        if not path:
            return
        for name, state in self._libs.items():
            rel = _relative(path, state.root.root)
            # the root itself is the supervisor's business; its own mtime says nothing
            if rel and state.root.accept(rel, is_dir):
                self._note(name, state, rel, is_dir, deadline)

    def _note(
        self, name: str, state: _LibraryState, rel: str, is_dir: bool, deadline: float
    ) -> None:
        """Let `rel` of one library wait until `deadline` (a waiting folder above it or a
        coming full rescan covers it instead)."""
        if state.rescan_deadline is not None:
            # a full rescan is coming: it waits for this burst to end too
            state.rescan_deadline = max(state.rescan_deadline, deadline)
            self._arm(name, "", state.rescan_deadline)
            return
        key = _ancestor_key(state.pending, rel)
        entry = state.pending.get(key or rel)
        if entry is None:
            if is_dir:
                # the directory's scan covers what was waiting below it
                prefix = rel + "/"
                for below in [k for k in state.pending if k.startswith(prefix)]:
                    del state.pending[below]
            entry = _Pending(deadline=deadline, is_directory=is_dir)
            state.pending[rel] = entry
        elif not key:
            entry.is_directory = entry.is_directory or is_dir
        entry.deadline = deadline
        entry.seen = None
        self._arm(name, key or rel, deadline)

    def _take_due(self, now: float) -> SettledBatch | None:
        wall = self._clock.wall()
        found: dict[str, list[str]] = {}
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
            if not self._quiet(state.root.root, rel, entry, now, wall):
                self._arm(name, rel, entry.deadline)
                continue
            del state.pending[rel]
            found.setdefault(name, []).append(rel)
        if not found and not rescans:
            return None
        out = [LookAgain(name, full_rescan=True) for name in sorted(rescans)]
        out += [LookAgain(name, tuple(sorted(paths))) for name, paths in sorted(found.items())]
        return tuple(out)

    def _quiet(self, root: str, rel: str, entry: _Pending, now: float, wall: float) -> bool:
        """One stat at the deadline: whether the path is quiet; when not, the entry's deadline
        has been moved on. What the path is stays the scan's to say."""
        try:
            st = os.lstat(os.path.join(root, *rel.split("/")))
        except OSError:
            return True  # gone or unreadable: nothing to wait for, the scan says which
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            return True  # a fifo or socket is never written to quiet
        seen = (st.st_size, st.st_mtime_ns)
        if entry.seen is not None and entry.seen != seen:
            # it changed since the last look without an event reaching us
            entry.seen = seen
            entry.deadline = now + self._settle
            return False
        wait = seconds_until_quiet(st.st_mtime_ns, wall, self._settle)
        if wait > 0:
            entry.seen = seen
            entry.deadline = now + wait
            return False
        return True


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
