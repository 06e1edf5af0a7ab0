"""One watchdog watch per library root, feeding the settle aggregator.

inotify where it can serve; watchdog's polling observer where it cannot: network and FUSE
filesystems (inotify never hears changes made by another host), `watch.polling = true`, and
roots that ran into a kernel inotify limit, at start or at any time later (the watches of
`fs.inotify.max_user_watches`, the instances of `fs.inotify.max_user_instances`, or an event
queue that keeps overflowing). The log says which and why, once, naming the sysctl to raise.
A root that fell back to polling tries inotify again on a reload (SIGHUP) or a restart.

Whatever the observer misses is recovered by a scan: a kernel queue overflow rescans that
root; the folders inotify could not watch are scanned when the root moves to polling; a root
that vanished (unmount, rmdir) and came back, or whose observer died, is rescanned.

watchdog tells of a watch limit reached after start only in its log (it leaves that folder
unwatched, says so, and carries on): `_WatchdogReports`, a filter on its loggers, hears those
lines and keeps them out of the log; the next `supervise()` acts on them.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import watchdog.events
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

from syncd.health import WatchState, device_name
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

#: watchdog ≥ 7.1 says "events of this watch were lost" (a kernel queue overflow) with an
#: event, once it has rebuilt its watches; older ones only in their log
_EVENTS_LOST: type[FileSystemEvent] | None = getattr(watchdog.events, "EventsLostEvent", None)

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
    *([_EVENTS_LOST] if _EVENTS_LOST is not None else []),
]

#: the loggers watchdog's inotify observer reports limits and overflows in
_WATCHDOG_LOGGERS = ("watchdog.observers.inotify", "watchdog.observers.inotify_c")
#: what inotify_add_watch (ENOSPC) and inotify_init (EMFILE, ENFILE) answer at a limit
LIMIT_ERRNOS = frozenset({errno.ENOSPC, errno.EMFILE, errno.ENFILE})
#: this many queue overflows of one root within _OVERFLOW_WINDOW seconds: poll it instead
_OVERFLOWS_BEFORE_POLLING = 3
_OVERFLOW_WINDOW = 600.0
#: folders inotify could not watch are looked at one by one up to this many; more: a rescan
_MAX_UNWATCHED_LOOKS = 1000
#: directories that may appear or vanish between watchdog's walk and ours
_SHORTFALL_SLACK = 2


@dataclass(frozen=True)
class WatchChoice:
    """How a root is watched and why; `limit`: polled because an inotify limit was reached."""

    polling: bool
    reason: str
    limit: bool = False

    @property
    def mode(self) -> str:
        """ "polling" or "inotify"."""
        return "polling" if self.polling else "inotify"


@dataclass(frozen=True)
class InotifyLimit:
    """A kernel limit inotify ran into, as the log names it: `what` ("inotify watch limit"),
    the `setting` that sets it and its `value` now (None: unknown), and how to raise it."""

    what: str
    setting: str
    value: int | None
    fix: str

    def named(self) -> str:
        """'inotify watch limit reached (fs.inotify.max_user_watches = 8192)'."""
        value = "?" if self.value is None else str(self.value)
        return f"{self.what} reached ({self.setting} = {value})"


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def _sysctl_limit(what: str, global_name: str, namespace_name: str, least: int) -> InotifyLimit:
    """The limit in force: the machine's sysctl, or this user namespace's own when that is
    lower (a container); the fix asks for twice the value, at least `least`."""
    machine = _read_int("/proc/sys/" + global_name.replace(".", "/"))
    own = _read_int("/proc/sys/" + namespace_name.replace(".", "/"))
    setting, value = global_name, machine
    if own is not None and (machine is None or own < machine):
        setting, value = namespace_name, own
    wanted = max(least, 2 * (value or 0))
    return InotifyLimit(what, setting, value, f"raise it with `sysctl {setting}={wanted}`")


def inotify_limit(err: int) -> InotifyLimit:
    """The limit behind an inotify error: ENOSPC (watches), EMFILE (instances, or this
    process's open files), ENFILE (the machine's open files)."""
    if err == errno.ENOSPC:
        return _sysctl_limit(
            "inotify watch limit", "fs.inotify.max_user_watches", "user.max_inotify_watches",
            524288,
        )  # fmt: skip
    if err == errno.ENFILE:
        return _sysctl_limit("open-file limit of the machine", "fs.file-max", "fs.file-max", 0)
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        open_files = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_files = 0
    if soft != resource.RLIM_INFINITY and open_files >= soft - 2:
        return InotifyLimit(
            "open-file limit", "RLIMIT_NOFILE", soft,
            f"raise it with LimitNOFILE={2 * soft} in the unit (or `ulimit -n`)",
        )  # fmt: skip
    return _sysctl_limit(
        "inotify instance limit", "fs.inotify.max_user_instances", "user.max_inotify_instances",
        512,
    )  # fmt: skip


def queue_limit() -> InotifyLimit:
    """The kernel's inotify event queue length (one for the machine)."""
    return _sysctl_limit(
        "inotify event queue limit", "fs.inotify.max_queued_events",
        "fs.inotify.max_queued_events", 65536,
    )  # fmt: skip


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
        return WatchChoice(True, "watch.polling = true")
    if polling == "off":
        return WatchChoice(False, "watch.polling = false")
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


# -- what watchdog reports besides events ------------------------------------------------------

ReportKind = Literal["limit", "overflow", "lost"]


@dataclass(frozen=True)
class _Report:
    """Something watchdog reported: a folder it could not watch at a `limit` (errno), a
    queue `overflow` (events of `path`'s watch lost; None: of every watch), or a root whose
    watches it `lost` while rebuilding them."""

    kind: ReportKind
    path: str | None
    errno: int = 0


class _Inbox:
    """Reports for one watcher, posted from watchdog's threads (which hold watchdog's locks:
    posting never waits for anything else), taken by `supervise()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: list[_Report] = []
        self.arrived = threading.Event()

    def post(self, report: _Report) -> None:
        with self._lock:
            self._reports.append(report)
        self.arrived.set()

    def take(self) -> list[_Report]:
        with self._lock:
            reports, self._reports = self._reports, []
            self.arrived.clear()
        return reports


class _WatchdogReports(logging.Filter):
    """Hears what watchdog's inotify observer says only in its log: a folder left unwatched
    at a limit (ENOSPC, EMFILE), a kernel queue overflow, watches it could not rebuild.
    Hands each to every watcher's inbox and keeps the line out of the log: the watcher says
    once, in its own words, what it did about it. One filter for the process (a logger stops
    at the first filter that refuses a record)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._inboxes: list[_Inbox] = []

    def attach(self, inbox: _Inbox) -> None:
        with self._lock:
            if not self._inboxes:
                for name in _WATCHDOG_LOGGERS:
                    logger = logging.getLogger(name)
                    logger.addFilter(self)
                    if not logger.isEnabledFor(logging.WARNING):
                        logger.setLevel(logging.WARNING)  # else the reports never reach us
            self._inboxes.append(inbox)

    def detach(self, inbox: _Inbox) -> None:
        with self._lock:
            if inbox in self._inboxes:
                self._inboxes.remove(inbox)
            if not self._inboxes:
                for name in _WATCHDOG_LOGGERS:
                    logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        report = _read_report(record)
        if report is None:
            return True
        with self._lock:
            inboxes = list(self._inboxes)
        if report.kind == "overflow" and _EVENTS_LOST is not None:
            return False  # each watch's EventsLostEvent says it, once watches are rebuilt
        for inbox in inboxes:
            inbox.post(report)
        return False


def _read_report(record: logging.LogRecord) -> _Report | None:
    """What a watchdog log record reports, or None for anything else (let through)."""
    if record.levelno < logging.WARNING:
        return None
    text = str(record.msg).lower()
    args = record.args if isinstance(record.args, tuple) else ()
    path = next((os.fsdecode(a) for a in args if isinstance(a, bytes | str)), None)
    error = next((a for a in args if isinstance(a, OSError)), None)
    if error is None and record.exc_info and isinstance(record.exc_info[1], OSError):
        error = record.exc_info[1]
    if "overflow" in text and error is None:
        return _Report("overflow", path)
    if error is None:
        return None
    if "rebuild" in text:
        return _Report("lost", path, error.errno or 0)
    if error.errno in LIMIT_ERRNOS:
        return _Report("limit", path, error.errno or 0)
    return None


_REPORTS = _WatchdogReports()


class _Forward(FileSystemEventHandler):
    """Turns watchdog events into PathEvents for the aggregator (observer thread, holding the
    observer's lock: nothing here may wait for the watcher's lock)."""

    _KINDS: dict[str, EventKind] = {
        "created": "created",
        "modified": "modified",
        "attrib": "modified",
        "closed": "modified",
        "deleted": "deleted",
        "moved": "moved",
    }

    def __init__(self, sink: Callable[[PathEvent], None], inbox: _Inbox) -> None:
        super().__init__()
        self._sink = sink
        self._inbox = inbox

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.event_type == "events_lost":
            self._inbox.post(_Report("overflow", os.fsdecode(event.src_path)))
            return
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


# -- the watcher -------------------------------------------------------------------------------


@dataclass
class _RootState:
    library: str
    root: str
    follow_symlinks: bool
    choice: WatchChoice
    watch: Any = None  # watchdog ObservedWatch while watching
    observer: Any = None  # the observer `watch` belongs to
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the root when scheduled
    missing_reason: str = ""
    #: wall time the current mode began
    since: float = 0.0
    #: the root's device when last seen as a mount point ("" never)
    mount_device: str = ""
    #: wall times of recent queue overflows, and whether one was logged at WARNING
    overflows: list[float] = field(default_factory=list)
    overflow_warned: bool = False
    #: the mount points strictly inside the root when its watch was scheduled
    inner_mounts: frozenset[str] = frozenset()


class LibraryWatcher:
    """Watches every library root and reports what it sees or missed.

    `sink` receives every event; `rescan(library, reason)` is called whenever events may
    have been lost for that library. `supervise()` is meant to be called every few seconds
    and as soon as `wait_for_trouble()` returns True (its own thread or the main loop); it
    never raises.
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
        self._inbox = _Inbox()
        self._handler = _Forward(sink, self._inbox)
        self._inotify: Any = None  # watchdog InotifyObserver, started on first use
        self._poller: Any = None  # watchdog PollingObserver, started on first use
        _REPORTS.attach(self._inbox)

    # -- public ------------------------------------------------------------------------

    @property
    def poll_interval(self) -> float:
        """Seconds between two snapshots of a polled root."""
        return self._poll_interval

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

    def retry_inotify(self) -> None:
        """Roots polled because an inotify limit was reached try inotify again (a reload:
        the limit may have been raised); the poller watches on until inotify holds, so
        nothing falls between the two."""
        with self._lock:
            for state in list(self._roots.values()):
                if state.watch is not None and state.choice.limit:
                    self._retry_inotify(state)

    def unwatch(self, library: str) -> None:
        """Stop watching a library root (library removed from the config)."""
        with self._lock:
            state = self._roots.pop(library, None)
            if state is not None:
                self._stop(state)

    def modes(self) -> dict[str, str]:
        """library -> "inotify" | "polling" | "missing".

        Lock-free (a copy of the table): the watchdog ping must not wait for a slow mount."""
        return {name: s.mode for name, s in self.states().items()}

    def states(self) -> dict[str, WatchState]:
        """library -> how its root is watched now and why (lock-free, as `modes`)."""
        roots = dict(self._roots)
        return {name: self._state_of(s) for name, s in roots.items()}

    def wait_for_trouble(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for watchdog to report a limit, an overflow or lost
        watches; True when `supervise()` has something to act on."""
        return self._inbox.arrived.wait(timeout)

    def supervise(self) -> None:
        """Act on watchdog's reports (limits reached, overflows), then notice roots that
        vanished, came back or were replaced, and observers that died; restart their watch
        and ask for a rescan."""
        with self._lock:
            try:
                self._act_on_reports(self._inbox.take())
            except Exception:  # a supervisor that dies watches nothing again
                log.exception("acting on the observer's reports failed")
            for state in list(self._roots.values()):
                try:
                    self._supervise_one(state)
                except Exception:
                    log.exception("library %s: supervising the watch failed", state.library)

    def close(self) -> None:
        """Stop every observer thread."""
        _REPORTS.detach(self._inbox)
        self._inbox.arrived.set()  # release a waiting supervisor
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

    def _state_of(self, state: _RootState) -> WatchState:
        if state.watch is None:
            return WatchState(
                "missing", state.missing_reason, mount_device=state.mount_device,
                since=state.since,
            )  # fmt: skip
        choice = state.choice
        return WatchState(
            choice.mode, choice.reason, choice.limit,
            self._poll_interval if choice.polling else 0.0, state.mount_device, state.since,
        )  # fmt: skip

    def _start(self, state: _RootState) -> bool:
        """Schedule the root's watch; False (and logged once per reason) when it cannot be."""
        identity = _identity(state.root)
        if identity is None:
            self._missing(state, "root does not exist or is not a directory")
            return False
        limit: InotifyLimit | None = None
        try:
            if not state.choice.polling:
                try:
                    state.observer, state.watch = self._schedule_inotify(state)
                except OSError as exc:
                    if exc.errno not in LIMIT_ERRNOS:
                        raise
                    limit = inotify_limit(exc.errno)
                    state.choice = WatchChoice(True, limit.named(), limit=True)
            if state.choice.polling:
                state.observer, state.watch = self._schedule_polling(state)
        except OSError as exc:
            self._missing(state, f"cannot watch it: {exc.strerror or exc}")
            return False
        state.identity = identity
        state.missing_reason = ""
        state.since = time.time()
        state.inner_mounts = inner_mounts(state.root, self._mountinfo())
        self._note_mount(state, identity[0])
        if limit is not None:
            self._warn_limit(state, limit)
        else:
            log.info(
                "library %s: watching %s with %s (%s)",
                state.library, state.root, state.choice.mode, state.choice.reason,
            )  # fmt: skip
        return True

    def _note_mount(self, state: _RootState, device: int) -> None:
        """Remember the root's device while it is a mount point: when it is later found on
        its parent's filesystem, its share or disk is not mounted (health says so)."""
        try:
            parent = os.stat(os.path.dirname(state.root)).st_dev
        except OSError:
            return
        if parent != device:
            state.mount_device = device_name(device)

    def _warn_limit(self, state: _RootState, limit: InotifyLimit) -> None:
        log.warning(
            "library %s: %s; polling %s every %g s — %s",
            state.library, limit.named(), state.root, self._poll_interval, limit.fix,
        )  # fmt: skip

    def _missing(self, state: _RootState, reason: str) -> None:
        if reason != state.missing_reason:
            log.warning(
                "library %s: root %s: %s; watching it once it is back, no deletes meanwhile",
                state.library, state.root, reason,
            )  # fmt: skip
            state.since = time.time()
        state.missing_reason = reason
        state.watch = state.observer = None

    def _schedule_inotify(self, state: _RootState) -> tuple[Any, Any]:
        if self._inotify is None:
            from watchdog.observers.inotify import InotifyObserver

            observer = InotifyObserver()
            observer.start()
            self._inotify = observer
        before = count_inotify_watches()
        watch = self._inotify.schedule(
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
            return self._inotify, watch  # nested roots share watches: the count would not add up
        # watchdog may skip subdirectories it cannot watch without a word: count them
        wanted = count_watchable_dirs(state.root, state.follow_symlinks)
        got = after - before
        if wanted - got > _SHORTFALL_SLACK:
            self._unschedule(self._inotify, watch)
            raise OSError(
                errno.ENOSPC, f"inotify holds {got} of {wanted} directories of {state.root}"
            )
        return self._inotify, watch

    def _schedule_polling(self, state: _RootState) -> tuple[Any, Any]:
        if self._poller is None:
            observer = PollingObserver(timeout=self._poll_interval)
            observer.start()
            self._poller = observer
        watch = self._poller.schedule(
            self._handler,
            state.root,
            recursive=True,
            event_filter=WATCHED_EVENTS,
            follow_symlink=state.follow_symlinks,
        )
        return self._poller, watch

    def _unschedule(self, observer: Any, watch: Any) -> None:
        """Remove one watch from the one observer that holds it (a polled and a watched
        root have equal watches: each observer is asked only about its own)."""
        if observer is None or watch is None:
            return
        try:
            observer.unschedule(watch)
        except KeyError:
            pass  # its emitter is already gone
        except OSError:
            log.debug("unscheduling the watch of %s failed", watch.path, exc_info=True)

    def _stop(self, state: _RootState) -> None:
        self._unschedule(state.observer, state.watch)
        state.watch = state.observer = None

    def _emitter_alive(self, state: _RootState) -> bool:
        observer = state.observer
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
        mounts = inner_mounts(state.root, self._mountinfo())
        if identity != state.identity:
            reason = "root replaced (mounted or unmounted)"
        elif not self._emitter_alive(state):
            reason = f"the {state.choice.mode} observer stopped"
        elif mounts != state.inner_mounts:
            # a share mounted inside the root hides the folder inotify watched; one that
            # dropped took its watches with it: watch the tree anew, and let a scan judge
            reason = _mounts_changed(state.root, state.inner_mounts, mounts)
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

    # -- watchdog's reports (lock held) ------------------------------------------------

    def _act_on_reports(self, reports: list[_Report]) -> None:
        unwatched: dict[str, tuple[_RootState, int, list[str]]] = {}
        overflowed: dict[str, _RootState] = {}
        for report in reports:
            for state in self._roots_of(report.path):
                if report.kind == "overflow":
                    overflowed[state.library] = state
                elif report.kind == "limit" or report.errno in LIMIT_ERRNOS:
                    _, _, paths = unwatched.setdefault(state.library, (state, report.errno, []))
                    # watches it could not rebuild: the whole root is unwatched
                    paths.append(state.root if report.kind == "lost" else report.path or "")
                else:
                    self._rewatch_lost(state)
        for state, err, paths in unwatched.values():
            self._fall_back(state, inotify_limit(err), paths)
        now = time.time()
        for state in overflowed.values():
            self._overflowed(state, now)

    def _roots_of(self, path: str | None) -> list[_RootState]:
        """The roots watched with inotify that hold `path` (all of them for None)."""
        watched = [s for s in self._roots.values() if s.watch is not None and not s.choice.polling]
        if path is None:
            return watched
        where = os.path.abspath(path)
        return [s for s in watched if _is_within(where, s.root)]

    def _fall_back(self, state: _RootState, limit: InotifyLimit, unwatched: list[str]) -> None:
        """An inotify limit left folders of this root unwatched: poll the root instead, say
        so once, and look at what inotify could not watch (the poller's first snapshot
        already holds it, so the poller alone would never report it)."""
        if state.choice.polling or state.watch is None:
            return
        previous = (state.observer, state.watch)
        try:
            state.observer, state.watch = self._schedule_polling(state)
        except OSError as exc:
            self._stop(state)
            self._missing(state, f"cannot poll it: {exc.strerror or exc}")
            return
        self._unschedule(*previous)  # after the poller's snapshot: nothing falls between
        state.choice = WatchChoice(True, limit.named(), limit=True)
        state.since = time.time()
        self._warn_limit(state, limit)
        folders = _topmost(p for p in unwatched if p and _is_within(p, state.root))
        if state.root in folders or len(folders) > _MAX_UNWATCHED_LOOKS:
            self._rescan(state.library, f"{limit.what} reached")
            return
        for folder in folders:
            self._sink(PathEvent("created", folder, True))

    def _overflowed(self, state: _RootState, now: float) -> None:
        """The kernel dropped events of this root: rescan it. Said at WARNING once; a root
        that overflows again and again is polled instead."""
        state.overflows = [t for t in state.overflows if now - t < _OVERFLOW_WINDOW] + [now]
        limit = queue_limit()
        if len(state.overflows) >= _OVERFLOWS_BEFORE_POLLING:
            minutes = _OVERFLOW_WINDOW / 60
            overflowing = InotifyLimit(
                f"inotify event queue overflowed {len(state.overflows)} times in "
                f"{minutes:g} minutes: {limit.what}",
                limit.setting, limit.value, limit.fix,
            )  # fmt: skip
            self._fall_back(state, overflowing, [])
        elif not state.overflow_warned:
            log.warning(
                "library %s: inotify event queue overflowed (%s = %s), events were lost; "
                "rescanning %s — if it happens often, %s",
                state.library, limit.setting, "?" if limit.value is None else limit.value,
                state.root, limit.fix,
            )  # fmt: skip
            state.overflow_warned = True
        else:
            log.info("library %s: inotify event queue overflowed again; rescanning", state.library)
        self._rescan(state.library, "inotify queue overflow")

    def _rewatch_lost(self, state: _RootState) -> None:
        """watchdog lost the watches of this root for another reason: watch it afresh."""
        log.warning("library %s: the inotify watches were lost; rewatching and rescanning",
                    state.library)  # fmt: skip
        self._stop(state)
        state.choice = choose_watch_mode(state.root, self._polling, self._mountinfo())
        if self._start(state):
            self._rescan(state.library, "inotify watches lost")

    def _retry_inotify(self, state: _RootState) -> None:
        choice = choose_watch_mode(state.root, self._polling, self._mountinfo())
        if choice.polling:
            return
        try:
            observer, watch = self._schedule_inotify(state)
        except OSError as exc:
            if exc.errno not in LIMIT_ERRNOS:
                log.warning("library %s: inotify cannot watch %s: %s; polling on",
                            state.library, state.root, exc.strerror or exc)  # fmt: skip
                return
            limit = inotify_limit(exc.errno)
            state.choice = WatchChoice(True, limit.named(), limit=True)
            self._warn_limit(state, limit)
            return
        self._unschedule(state.observer, state.watch)  # inotify holds: both watched meanwhile
        state.observer, state.watch, state.choice = observer, watch, choice
        state.since = time.time()
        state.overflows, state.overflow_warned = [], False
        log.info("library %s: watching %s with inotify again (%s)",
                 state.library, state.root, choice.reason)  # fmt: skip


def inner_mounts(root: str, mountinfo: str) -> frozenset[str]:
    """The mount points strictly inside ``root``, from a /proc/self/mountinfo table."""
    found: set[str] = set()
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        point = _unescape_mount_field(fields[4])
        if point != root and _is_within(point, root):
            found.add(point)
    return frozenset(found)


def _mounts_changed(root: str, before: frozenset[str], now: frozenset[str]) -> str:
    """One line naming the mount points that came and went inside ``root``."""

    def named(points: frozenset[str]) -> str:
        shown = sorted(os.path.relpath(p, root) for p in points)
        return ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")

    parts = []
    if now - before:
        parts.append(f"mounted inside the root: {named(now - before)}")
    if before - now:
        parts.append(f"unmounted inside the root: {named(before - now)}")
    return "; ".join(parts)


def _topmost(paths: Iterable[str]) -> list[str]:
    """The paths not inside another of them, sorted."""
    out: list[str] = []
    for path in sorted({os.path.abspath(p) for p in paths}):
        if not out or not _is_within(path, out[-1]):
            out.append(path)
    return out


def _identity(root: str) -> tuple[int, int] | None:
    try:
        st = os.stat(root)
    except OSError:
        return None
    if not os.path.isdir(root):
        return None
    return (st.st_dev, st.st_ino)
