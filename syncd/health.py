"""Per-library health: the one answer `status`, `status --json`, the web console, /metrics
and /healthz give about each library.

A library is healthy when nothing stands between its files and the gallery: its root is
there, readable and mounted, it is watched (not only polled), and no deletes wait for a
person. Each thing that stands in the way is a `Reason` with a stable code (`REASONS`);
`[health] accept` lists the codes an operator accepts (polling on NFS, say): they are still
shown, but /healthz stays 200 for them.

Adding a reason: name its code and what it means in `REASONS`, then hand a `Reason` to
`library_health` (its `conditions`) from wherever the fact is known (a scan, the ledger).

`syncd run` publishes how it watches and sees each root in a small file beside the ledger
(`service_state_path`), so `syncd status` and `syncd console`, other processes (and maybe
other users), tell what the service sees.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:  # config imports this module for REASONS: no import back at run time
    from syncd.config import Config

log = logging.getLogger(__name__)

#: every reason a library can be unhealthy for: code -> what it means (README, `health.accept`)
REASONS: Final[Mapping[str, str]] = {
    "polling": "the root is polled, not watched (a network or FUSE filesystem, or "
    "watch.polling = true): changes are seen a poll interval late",
    "inotify_limit": "the root is polled because a kernel inotify limit was reached "
    "(watches, instances or the event queue); raise the sysctl the log names",
    "root_missing": "the root does not exist or is not a directory",
    "root_unreadable": "the root cannot be listed (permissions)",
    "root_empty": "the root is empty",
    "root_unmounted": "the root is an empty mount point, or it was a mount point and is now "
    "on its parent's filesystem: the share or disk is not mounted",
    "held_deletes": "deletes are held by the mass-delete safety until "
    "`syncd reconcile --allow-mass-delete`",
    "root_elsewhere": "the last scan found the root on another filesystem with most of its "
    "files missing (the folder beneath an unmounted share): its files are kept",
    "mount_missing": "a mount point inside the root is not mounted, gone or empty: the files "
    "the ledger knows under it are kept",
    "folders_unreadable": "the last scan could not read some folders (permissions, I/O "
    "errors, stale network handles): the files under them are kept",
}

WATCH_MODES: Final = ("inotify", "polling", "missing")


@dataclass(frozen=True)
class Reason:
    """One thing that keeps a library from being healthy: a `REASONS` code and one line for
    people. `accepted`: the operator listed the code in `health.accept`."""

    code: str
    detail: str
    accepted: bool = False

    def as_dict(self) -> dict[str, Any]:
        """For `status --json`."""
        return {"code": self.code, "detail": self.detail, "accepted": self.accepted}


@dataclass(frozen=True)
class WatchState:
    """How `syncd run` watches one library root now.

    `mode` is "inotify", "polling" or "missing" (the root is away; watched once it is
    back); `reason` says why in one line; `limit` is set when it polls because an inotify
    limit was reached; `poll_interval` in seconds; `mount_device` is the root's device
    ("major:minor") when it was last seen as a mount point (its own filesystem), "" if never.
    """

    mode: str
    reason: str = ""
    limit: bool = False
    poll_interval: float = 0.0
    mount_device: str = ""
    #: epoch seconds since this mode holds
    since: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """For the state file and `status --json`."""
        return {
            "mode": self.mode, "reason": self.reason, "limit": self.limit,
            "poll_interval": self.poll_interval, "mount_device": self.mount_device,
            "since": self.since,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WatchState:
        """The inverse of `as_dict`; ValueError/TypeError/KeyError on a foreign document."""
        mode = str(data["mode"])
        if mode not in WATCH_MODES:
            raise ValueError(f"unknown watch mode {mode!r}")
        return cls(
            mode, str(data.get("reason", "")), bool(data.get("limit", False)),
            float(data.get("poll_interval", 0.0)), str(data.get("mount_device", "")),
            float(data.get("since", 0.0)),
        )  # fmt: skip


@dataclass(frozen=True)
class RootFacts:
    """What one look at a library root found (`inspect_root`).

    `problem` is "" (a readable directory), "missing", "not_dir" or "unreadable", with the
    system's words in `error`; `device` and `parent_device` are "major:minor" ("" unknown).
    """

    root: str
    problem: str = ""
    error: str = ""
    empty: bool = False
    device: str = ""
    parent_device: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RootFacts:
        """The inverse of ``vars(facts)``; KeyError/TypeError on a foreign document."""
        return cls(
            str(data["root"]), str(data.get("problem", "")), str(data.get("error", "")),
            bool(data.get("empty", False)), str(data.get("device", "")),
            str(data.get("parent_device", "")),
        )  # fmt: skip

    @property
    def on_parent_device(self) -> bool:
        """The root lives on its parent's filesystem (it is not a mount point now)."""
        return bool(self.device) and self.device == self.parent_device


def device_name(st_dev: int) -> str:
    """A device number as people read it: "major:minor"."""
    return f"{os.major(st_dev)}:{os.minor(st_dev)}"


def inspect_root(root: str | Path) -> RootFacts:
    """Look at a library root once: exists, a directory, listable, empty, its device and its
    parent's. Never raises; blocks as long as the filesystem does (a hung mount)."""
    path = os.path.abspath(os.fspath(root))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return RootFacts(path, "missing", "does not exist")
    except OSError as exc:
        unreadable = exc.errno in (errno.EACCES, errno.EPERM)
        return RootFacts(path, "unreadable" if unreadable else "missing", _words(exc))
    if not stat.S_ISDIR(st.st_mode):
        return RootFacts(path, "not_dir", "is not a directory")
    device = device_name(st.st_dev)
    parent = os.path.dirname(path)
    parent_device = ""
    if parent != path:
        try:
            parent_device = device_name(os.stat(parent).st_dev)
        except OSError:
            parent_device = ""
    try:
        with os.scandir(path) as entries:
            empty = next(entries, None) is None
    except OSError as exc:
        return RootFacts(path, "unreadable", _words(exc), False, device, parent_device)
    return RootFacts(path, "", "", empty, device, parent_device)


def _words(exc: OSError) -> str:
    return exc.strerror or str(exc)


def root_reasons(facts: RootFacts, known_files: int | None, mount_device: str = "") -> list[Reason]:
    """The reasons a root gives: missing, unreadable, unmounted, empty.

    `known_files`: live files the ledger knows in the library (None: unknown, the ledger
    is away); `mount_device`: the root's device when it was last seen as a mount point."""
    root = facts.root
    if facts.problem in ("missing", "not_dir"):
        return [Reason("root_missing", f"root {root} {facts.error}")]
    if facts.problem == "unreadable":
        return [Reason("root_unreadable", f"root {root} cannot be read: {facts.error}")]
    knows = f", but the ledger knows {_files(known_files)}" if known_files else ""
    if mount_device and facts.on_parent_device:
        what = "an empty folder" if facts.empty else "a folder"
        return [
            Reason(
                "root_unmounted",
                f"root {root} is no longer a mount point: it is {what} on its parent's "
                f"filesystem (device {facts.device}; it was on device {mount_device})"
                f"{knows if facts.empty else ''}; is it mounted?",
            )
        ]
    if not facts.empty:
        return []
    if known_files and facts.on_parent_device:
        return [
            Reason(
                "root_unmounted",
                f"root {root} is an empty folder on its parent's filesystem{knows}; "
                "is the share mounted?",
            )
        ]
    return [Reason("root_empty", f"root {root} is empty{knows}")]


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def watch_reasons(state: WatchState | None) -> list[Reason]:
    """The reasons how a root is watched gives: polled instead of watched. A missing root
    is the root's own reason (`root_reasons`)."""
    if state is None or state.mode != "polling":
        return []
    every = f"every {state.poll_interval:g} s" if state.poll_interval else ""
    detail = " ".join(p for p in ("polled", every, "instead of watched:", state.reason) if p)
    return [Reason("inotify_limit" if state.limit else "polling", detail)]


def held_reasons(held_deletes: int) -> list[Reason]:
    """Deletes the mass-delete safety holds wait for a person."""
    if held_deletes <= 0:
        return []
    return [
        Reason(
            "held_deletes",
            f"{held_deletes} delete{'' if held_deletes == 1 else 's'} held (more than "
            "safety.max_delete_fraction vanished at "
            "once); if meant, release them with `syncd reconcile --allow-mass-delete`",
        )
    ]


@dataclass(frozen=True)
class LibraryHealth:
    """One library's health: how it is watched (None: no `syncd run` here) and the reasons
    it is not healthy, accepted ones included."""

    library: str
    watch: WatchState | None = None
    reasons: tuple[Reason, ...] = ()

    @property
    def degraded(self) -> bool:
        """Some reason the operator did not accept holds."""
        return any(not r.accepted for r in self.reasons)

    @property
    def polling(self) -> bool:
        """The root is polled, not watched."""
        return self.watch is not None and self.watch.mode == "polling"

    def with_reasons(self, more: Iterable[Reason], accept: Collection[str] = ()) -> LibraryHealth:
        """This health with `more` reasons (codes in `accept` marked accepted)."""
        added = tuple(_judged(r, accept) for r in more)
        return LibraryHealth(self.library, self.watch, self.reasons + added)

    def lines(self, accepted: bool = False) -> list[str]:
        """One line per reason not accepted ("library photos: root ... cannot be read: ..."),
        or with `accepted` per accepted one."""
        return [
            f"library {self.library}: {r.detail}" for r in self.reasons if r.accepted is accepted
        ]

    def as_dict(self) -> dict[str, Any]:
        """One library in the `health` member of `status --json`."""
        return {
            "name": self.library,
            "ok": not self.degraded,
            "watch": None if self.watch is None else self.watch.mode,
            "watch_reason": None if self.watch is None else self.watch.reason,
            "reasons": [r.as_dict() for r in self.reasons],
        }


def _judged(reason: Reason, accept: Collection[str]) -> Reason:
    accepted = reason.code in accept
    if accepted == reason.accepted:
        return reason
    return Reason(reason.code, reason.detail, accepted)


def library_health(
    library: str,
    facts: RootFacts,
    *,
    watch: WatchState | None = None,
    known_files: int | None = None,
    held_deletes: int = 0,
    conditions: Sequence[Reason] = (),
    accept: Collection[str] = (),
) -> LibraryHealth:
    """One library's health from what is known of it: its root (`inspect_root`), how
    `syncd run` watches it, the ledger's live files and held deletes, and any `conditions`
    found elsewhere (a scan). Codes in `accept` are shown but accepted."""
    reasons = [
        *root_reasons(facts, known_files, watch.mount_device if watch is not None else ""),
        *watch_reasons(watch),
        *held_reasons(held_deletes),
        *conditions,
    ]
    return LibraryHealth(library, watch).with_reasons(reasons, accept)


class LibraryCounts(Protocol):
    """What the ledger says of one library (a `syncd.ledger.report.LibraryStatus`)."""

    @property
    def name(self) -> str: ...

    @property
    def files(self) -> int: ...

    @property
    def held_deletes(self) -> int: ...


@dataclass(frozen=True)
class Counts:
    """A library's numbers as `LibraryCounts` wants them, where no status line is at hand."""

    name: str
    files: int
    held_deletes: int = 0


class ScanConditions(Protocol):
    """What a library's last scan could not see (a `syncd.ledger.conditions.LibraryConditions`)."""

    @property
    def root(self) -> Any: ...

    @property
    def missing_mounts(self) -> Sequence[Any]: ...

    @property
    def unreadable(self) -> Sequence[Any]: ...


def scan_reasons(found: ScanConditions) -> list[Reason]:
    """The reasons a library's last scan kept files it could not see. A root missing,
    unreadable or empty is left to the live look at the root (`inspect_root`), which is
    newer than any scan; a root found on another filesystem is the scan's to say."""
    reasons = []
    root = found.root
    if root is not None and root.kind == "device_changed":
        reasons.append(Reason("root_elsewhere", f"{root.reason}: {_kept(root.files)}"))
    for mount in found.missing_mounts:
        reasons.append(Reason("mount_missing", f"{mount.describe()}: {_kept(mount.files)}"))
    if found.unreadable:
        files = sum(folder.files for folder in found.unreadable)
        shown = "; ".join(folder.describe() for folder in found.unreadable[:3])
        more = len(found.unreadable) - 3
        shown += f"; and {more} more" if more > 0 else ""
        folders = "1 folder" if len(found.unreadable) == 1 else f"{len(found.unreadable)} folders"
        reasons.append(
            Reason("folders_unreadable", f"{folders} could not be read ({shown}): {_kept(files)}")
        )
    return reasons


def _kept(count: int) -> str:
    return f"its {count} file is kept" if count == 1 else f"its {count} files are kept"


def scans_reasons(found: Mapping[str, ScanConditions] | None) -> dict[str, list[Reason]]:
    """`scan_reasons` of every library in `found` (library name -> its conditions)."""
    return {name: scan_reasons(conditions) for name, conditions in (found or {}).items()}


def health_report(
    config: Config,
    counts: Iterable[LibraryCounts] | None,
    watch: Mapping[str, WatchState] | None,
    facts: Mapping[str, RootFacts] | None = None,
    conditions: Mapping[str, Sequence[Reason]] | None = None,
) -> list[LibraryHealth]:
    """The health of every library of `config`, in its order.

    `counts`: the ledger's numbers per library (None: the ledger cannot be read); `watch`:
    how `syncd run` watches each root (None: it does not run here); `facts`: roots already
    inspected (the others are inspected now); `conditions`: more reasons per library."""
    known = {c.name: c for c in counts} if counts is not None else None
    out = []
    for lib in config.libraries:
        seen = (facts or {}).get(lib.name) or inspect_root(lib.root)
        count = None if known is None else known.get(lib.name)
        out.append(
            library_health(
                lib.name, seen,
                watch=None if watch is None else watch.get(lib.name),
                known_files=None if known is None else (count.files if count else 0),
                held_deletes=count.held_deletes if count else 0,
                conditions=(conditions or {}).get(lib.name, ()),
                accept=config.health.accept,
            )
        )  # fmt: skip
    return out


def with_health(document: dict[str, Any], healths: Sequence[LibraryHealth]) -> dict[str, Any]:
    """Add `health` to a `status --json` document: ``{"ok": no library degraded,
    "libraries": [each library's health, in config order]}``. Returns the same document."""
    document["health"] = {
        "ok": not any(h.degraded for h in healths),
        "libraries": [h.as_dict() for h in healths],
    }
    return document


# -- what `syncd run` publishes ---------------------------------------------------------------


def service_state_path(config: Config) -> Path:
    """Where `syncd run` publishes how it watches and sees each root: beside the ledger (or
    in its local state folder), one file per host."""
    return config.host.local_path(config.ledger.path, ".service.json")


@dataclass(frozen=True)
class ServiceState:
    """What the running `syncd run` published: how it watches each root, and each root as
    it sees it (as the service's user: another user may see it otherwise)."""

    watch: dict[str, WatchState]
    roots: dict[str, RootFacts]


@dataclass
class ServiceStateFile:
    """The file `syncd run` keeps up to date while it runs, and removes when it stops."""

    path: Path
    pid: int = field(default_factory=os.getpid)
    _written: ServiceState | None = field(default=None, repr=False)

    def publish(self, watch: Mapping[str, WatchState], roots: Mapping[str, RootFacts]) -> None:
        """Write the states when they changed since the last write (atomically); an error is
        logged, never raised."""
        state = ServiceState(dict(watch), dict(roots))
        if state == self._written:
            return
        doc = {
            "pid": self.pid,
            "written_at": time.time(),
            "libraries": {
                name: {
                    "watch": None if name not in state.watch else state.watch[name].as_dict(),
                    "root": None if name not in state.roots else vars(state.roots[name]),
                }
                for name in sorted(set(state.watch) | set(state.roots))
            },
        }
        temp = self.path.with_name(self.path.name + f".{self.pid}.tmp")
        try:
            temp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
            os.replace(temp, self.path)
        except OSError as exc:
            log.warning("cannot write %s: %s (status will not show the watch)", self.path, exc)
        self._written = state

    def remove(self) -> None:
        """Take the file away (the service stops: nothing is watched any more)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("pid") == self.pid:
                self.path.unlink()
        except (OSError, ValueError, AttributeError):
            pass


def read_service_state(path: Path) -> ServiceState | None:
    """What `syncd run` published at `path`; None when it does not run here (no file, a
    file left by a process that died, or one this syncd cannot read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pid = int(data["pid"])
        watch: dict[str, WatchState] = {}
        roots: dict[str, RootFacts] = {}
        for name, entry in data["libraries"].items():
            if entry.get("watch") is not None:
                watch[str(name)] = WatchState.from_dict(entry["watch"])
            if entry.get("root") is not None:
                roots[str(name)] = RootFacts.from_dict(entry["root"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if not _process_alive(pid):
        return None
    return ServiceState(watch, roots)


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process (the service's own user)
    return True


def current_health(
    config: Config,
    counts: Iterable[LibraryCounts] | None,
    scans: Mapping[str, ScanConditions] | None = None,
) -> list[LibraryHealth]:
    """Health as another process on this host tells it (`syncd status`, `syncd console`):
    the running `syncd run`'s view of its roots and watches, or, when it does not run here,
    the roots looked at now; `scans`: what each library's last scan could not see."""
    service = read_service_state(service_state_path(config))
    conditions = scans_reasons(scans)
    if service is None:
        return health_report(config, counts, None, conditions=conditions)
    return health_report(config, counts, service.watch, service.roots, conditions)
