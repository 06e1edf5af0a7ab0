"""One watchdog watch per library root, feeding the settle aggregator (SPEC §2.4, §5 [watch]).

inotify where it can serve; watchdog's polling observer where it cannot: network and FUSE
filesystems (inotify never hears changes made by another host), inotify limits reached,
or `watch.polling = "on"`. The log says which and why. Whatever the observer misses is
recovered by a full rescan of that root: a kernel queue overflow, an observer thread that
died, a root that vanished (unmount, rmdir) and came back.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.polling import PollingObserver

from syncd.watch.aggregator import EventKind, PathEvent

log = logging.getLogger(__name__)

PollingMode = Literal["auto", "on", "off"]

#: filesystems whose changes can come from elsewhere, unseen by this kernel's inotify
REMOTE_FILESYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "lustre",
        "gfs2", "ocfs2", "glusterfs", "virtiofs", "vboxsf", "vmhgfs", "prl_fs", "davfs",
        "sshfs", "beegfs", "gpfs", "panfs", "orangefs",
    }
)  # fmt: skip

#: only these events matter; leaving out opens and read-closes keeps our own reads silent
WATCHED_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    DirCreatedEvent,
    FileModifiedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    FileMovedEvent,
    DirMovedEvent,
]

#: watchdog ≥ 7.1 reports a kernel queue overflow only in its log, naming the root
_OVERFLOW_LOGGER = "watchdog.observers.inotify"


@dataclass(frozen=True)
class WatchChoice:
    """How a root is watched and why."""

    polling: bool
    reason: str

    @property
    def mode(self) -> str:
        """ "polling" or "inotify"."""
        return "polling" if self.polling else "inotify"


def _unescape_mount_field(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    out: list[str] = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def filesystem_type(path: str, mountinfo: str) -> str | None:
    """Filesystem type of the mount holding `path` (already resolved), read from the text of
    /proc/self/mountinfo; None when no mount line matches."""
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5:
            continue
        mount_point = _unescape_mount_field(fields[4])
        if not _is_within(path, mount_point):
            continue
        fstype = right.split()[0] if right.split() else ""
        # later lines over the same point are mounts on top: they win on equal length
        if best is None or len(mount_point) >= best[0]:
            best = (len(mount_point), fstype)
    return best[1] if best else None


def _is_within(path: str, mount_point: str) -> bool:
    if mount_point == "/":
        return path.startswith("/")
    return path == mount_point or path.startswith(mount_point.rstrip("/") + "/")


def read_mountinfo() -> str:
    """This process's mount table, or "" where there is none (not Linux)."""
    try:
        return Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return ""


def choose_watch_mode(root: str, polling: PollingMode, mountinfo: str | None = None) -> WatchChoice:
    """Decide inotify or polling for one root from `watch.polling` and its filesystem type."""
    if polling == "on":
        return WatchChoice(True, 'watch.polling = "on"')
    if polling == "off":
        return WatchChoice(False, 'watch.polling = "off"')
    table = read_mountinfo() if mountinfo is None else mountinfo
    fstype = filesystem_type(os.path.realpath(root), table)
    if fstype is None:
        return WatchChoice(False, "filesystem type unknown; inotify")
    if fstype in REMOTE_FILESYSTEMS or fstype.split(".")[0] in ("fuse", "fuseblk"):
        return WatchChoice(
            True,
            f"root is on {fstype}, where inotify misses changes made by other hosts "
            "or by the filesystem daemon",
        )
    return WatchChoice(False, f"root is on {fstype}; inotify")


def count_inotify_watches() -> int:
    """Inotify watches this process holds now (from /proc/self/fdinfo); -1 if unknown."""
    total = 0
    try:
        names = os.listdir("/proc/self/fdinfo")
    except OSError:
        return -1
    for name in names:
        try:
            with open(f"/proc/self/fdinfo/{name}", encoding="ascii", errors="replace") as fh:
                total += sum(1 for line in fh if line.startswith("inotify wd:"))
        except OSError:
            continue
    return total


def count_watchable_dirs(root: str, follow_symlinks: bool) -> int:
    """Directories under (and including) `root` that inotify could watch (readable ones)."""
    count = 0
    stack = [root]
    while stack:
        top = stack.pop()
        if not os.access(top, os.R_OK):
            continue
        count += 1
        try:
            with os.scandir(top) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=follow_symlinks):
                            stack.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            continue
    return count


class _Forward(FileSystemEventHandler):
    """Turns watchdog events into PathEvents for the aggregator (observer thread)."""

    _KINDS: dict[str, EventKind] = {
        "created": "created",
        "modified": "modified",
        "attrib": "modified",
        "closed": "modified",
        "deleted": "deleted",
        "moved": "moved",
    }

    def __init__(self, sink: Callable[[PathEvent], None]) -> None:
        super().__init__()
        self._sink = sink

    def dispatch(self, event: FileSystemEvent) -> None:
        kind = self._KINDS.get(event.event_type)
        if kind is None:
            return
        if event.is_directory and kind == "modified":
            return  # a directory's own mtime: its children's events say what changed
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if kind == "moved" else ""
        if kind == "moved" and not dest:
            kind = "deleted"
        self._sink(PathEvent(kind, src, event.is_directory, dest))


@dataclass
class _RootState:
    library: str
    root: str
    follow_symlinks: bool
    choice: WatchChoice
    watch: Any = None  # watchdog ObservedWatch while watching
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the root when scheduled
    missing_reason: str = ""


class LibraryWatcher:
    """Watches every library root and reports what it sees or missed.

    `sink` receives every event; `rescan(library, reason)` is called whenever events may
    have been lost for that library. `supervise()` is meant to be called every few seconds
    (its own thread or the main loop); it never raises.
    """

    def __init__(
        self,
        sink: Callable[[PathEvent], None],
        rescan: Callable[[str, str], None],
        *,
        polling: PollingMode = "auto",
        poll_interval: float = 2.0,
        mountinfo: Callable[[], str] = read_mountinfo,
    ) -> None:
        """`poll_interval`: seconds between two snapshots of a polled root."""
        self._sink = sink
        self._rescan = rescan
        self._polling: PollingMode = polling
        self._poll_interval = poll_interval
        self._mountinfo = mountinfo
        self._lock = threading.RLock()
        self._roots: dict[str, _RootState] = {}
        self._handler = _Forward(sink)
        self._inotify: Any = None  # watchdog InotifyObserver, started on first use
        self._poller: Any = None  # watchdog PollingObserver, started on first use
        self._overflow = _OverflowListener(self._on_overflow)
        logging.getLogger(_OVERFLOW_LOGGER).addHandler(self._overflow)

    # -- public ------------------------------------------------------------------------

    def watch(
        self, library: str, root: Path | str, *, follow_symlinks: bool = False
    ) -> WatchChoice:
        """Start watching one library root; a missing root is watched once it appears."""
        root_s = os.path.abspath(os.fspath(root))
        with self._lock:
            self.unwatch(library)
            choice = choose_watch_mode(root_s, self._polling, self._mountinfo())
            state = _RootState(library, root_s, follow_symlinks, choice)
            self._roots[library] = state
            self._start(state)
            return state.choice

    def set_polling(self, polling: PollingMode) -> None:
        """Apply a new `watch.polling` to every root (config reload)."""
        with self._lock:
            if polling == self._polling:
                return
            self._polling = polling
            for state in list(self._roots.values()):
                self.watch(state.library, state.root, follow_symlinks=state.follow_symlinks)

    def unwatch(self, library: str) -> None:
        """Stop watching a library root (library removed from the config)."""
        with self._lock:
            state = self._roots.pop(library, None)
            if state is not None:
                self._stop(state)

    def modes(self) -> dict[str, str]:
        """library -> "inotify" | "polling" | "missing".

        Lock-free (a copy of the table): the watchdog ping must not wait for a slow mount."""
        roots = dict(self._roots)
        return {
            name: ("missing" if s.watch is None else s.choice.mode) for name, s in roots.items()
        }

    def supervise(self) -> None:
        """Notice roots that vanished, came back or were replaced, and observers that died;
        restart their watch and ask for a rescan."""
        with self._lock:
            for state in list(self._roots.values()):
                try:
                    self._supervise_one(state)
                except Exception:  # a supervisor that dies watches nothing again
                    log.exception("library %s: supervising the watch failed", state.library)

    def close(self) -> None:
        """Stop every observer thread."""
        logging.getLogger(_OVERFLOW_LOGGER).removeHandler(self._overflow)
        with self._lock:
            self._roots.clear()
            for observer in (self._inotify, self._poller):
                if observer is not None:
                    observer.stop()
            for observer in (self._inotify, self._poller):
                if observer is not None and observer.is_alive():
                    observer.join(timeout=5)
            self._inotify = self._poller = None

    # -- internals (lock held) ---------------------------------------------------------

    def _start(self, state: _RootState) -> bool:
        """Schedule the root's watch; False (and logged once per reason) when it cannot be."""
        identity = _identity(state.root)
        if identity is None:
            self._missing(state, "root does not exist or is not a directory")
            return False
        try:
            if not state.choice.polling:
                try:
                    self._schedule_inotify(state)
                except OSError as exc:
                    if exc.errno not in (errno.ENOSPC, errno.EMFILE, errno.ENFILE):
                        raise
                    state.choice = WatchChoice(True, f"inotify limit reached: {_limit_hint(exc)}")
            if state.choice.polling:
                self._schedule_polling(state)
        except OSError as exc:
            self._missing(state, f"cannot watch it: {exc.strerror or exc}")
            return False
        state.identity = identity
        state.missing_reason = ""
        log.info(
            "library %s: watching %s with %s (%s)",
            state.library, state.root, state.choice.mode, state.choice.reason,
        )  # fmt: skip
        return True

    def _missing(self, state: _RootState, reason: str) -> None:
        if reason != state.missing_reason:
            log.warning(
                "library %s: root %s: %s; watching it once it is back, no deletes meanwhile",
                state.library, state.root, reason,
            )  # fmt: skip
        state.missing_reason = reason
        state.watch = None

    def _schedule_inotify(self, state: _RootState) -> None:
        if self._inotify is None:
            from watchdog.observers.inotify import InotifyObserver

            observer = InotifyObserver()
            observer.start()
            self._inotify = observer
        before = count_inotify_watches()
        state.watch = self._inotify.schedule(
            self._handler,
            state.root,
            recursive=True,
            event_filter=WATCHED_EVENTS,
            follow_symlink=state.follow_symlinks,
        )
        after = count_inotify_watches()
        nested = any(
            other is not state
            and not other.choice.polling
            and (_is_within(state.root, other.root) or _is_within(other.root, state.root))
            for other in self._roots.values()
        )
        if before < 0 or after < 0 or nested:
            return  # nested roots share watches: the count would not add up
        # watchdog skips subdirectories it cannot watch without a word: count them
        wanted = count_watchable_dirs(state.root, state.follow_symlinks)
        got = after - before
        if wanted - got > _SHORTFALL_SLACK:
            self._inotify.unschedule(state.watch)
            state.watch = None
            raise OSError(
                errno.ENOSPC, f"inotify holds {got} of {wanted} directories of {state.root}"
            )

    def _schedule_polling(self, state: _RootState) -> None:
        if self._poller is None:
            observer = PollingObserver(timeout=self._poll_interval)
            observer.start()
            self._poller = observer
        state.watch = self._poller.schedule(
            self._handler,
            state.root,
            recursive=True,
            event_filter=WATCHED_EVENTS,
            follow_symlink=state.follow_symlinks,
        )

    def _stop(self, state: _RootState) -> None:
        if state.watch is None:
            return
        for observer in (self._inotify, self._poller):
            if observer is None:
                continue
            try:
                observer.unschedule(state.watch)
            except KeyError:
                continue  # not this observer's watch, or its emitter already gone
            except OSError:
                log.debug("library %s: unscheduling the watch failed", state.library, exc_info=True)
        state.watch = None

    def _emitter_alive(self, state: _RootState) -> bool:
        observer = self._poller if state.choice.polling else self._inotify
        if observer is None or not observer.is_alive():
            return False
        return any(e.watch == state.watch and e.is_alive() for e in list(observer.emitters))

    def _supervise_one(self, state: _RootState) -> None:
        identity = _identity(state.root)
        if identity is None:
            if state.watch is not None:
                self._stop(state)
                self._missing(state, "root vanished (unmounted or removed)")
            return
        if state.watch is None:
            state.choice = choose_watch_mode(state.root, self._polling, self._mountinfo())
            if self._start(state):
                self._rescan(state.library, "root is back")
            return
        if identity != state.identity:
            reason = "root replaced (mounted or unmounted)"
        elif not self._emitter_alive(state):
            reason = f"the {state.choice.mode} observer stopped"
        else:
            return
        log.warning("library %s: %s; rewatching and rescanning", state.library, reason)
        self._stop(state)
        for attr in ("_inotify", "_poller"):
            observer = getattr(self, attr)
            if observer is not None and not observer.is_alive():
                setattr(self, attr, None)
        state.choice = choose_watch_mode(state.root, self._polling, self._mountinfo())
        if self._start(state):
            self._rescan(state.library, reason)

    def _on_overflow(self, path: str | None) -> None:
        """The kernel dropped events: rescan the library whose root overflowed (all inotify
        libraries when the report names none). Runs on watchdog's thread while it holds its
        own locks: it must not wait for ours (the table is read from a copy)."""
        roots = list(dict(self._roots).values())
        inotify = [s for s in roots if not s.choice.polling]
        hit = [s for s in inotify if path is None or os.path.abspath(path) == s.root]
        for name in [s.library for s in hit or inotify]:
            log.warning("library %s: inotify queue overflowed, events lost; rescanning", name)
            self._rescan(name, "inotify queue overflow")


#: directories that may appear or vanish between watchdog's walk and ours
_SHORTFALL_SLACK = 2


class _OverflowListener(logging.Handler):
    """Hears watchdog's 'queue overflowed' report (its only signal of one)."""

    def __init__(self, on_overflow: Callable[[str | None], None]) -> None:
        super().__init__(level=logging.WARNING)
        self._on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" not in str(record.msg):
            return
        path: str | None = None
        args = record.args if isinstance(record.args, tuple) else ()
        if args and isinstance(args[0], bytes | str):
            path = os.fsdecode(args[0])
        try:
            self._on_overflow(path)
        except Exception:
            self.handleError(record)


def _identity(root: str) -> tuple[int, int] | None:
    try:
        st = os.stat(root)
    except OSError:
        return None
    if not os.path.isdir(root):
        return None
    return (st.st_dev, st.st_ino)


def _limit_hint(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"{exc.strerror}; raise fs.inotify.max_user_watches"
    return f"{exc.strerror}; raise fs.inotify.max_user_instances or the open-file limit"
