"""What each library's last scan could not see, kept for ``status``, the console and health.

A file syncd cannot see is not a deleted file. A scan keeps, per library, the filesystems it
knows (the device of the root and the mount points under it) and the conditions under which
it kept files it could not see instead of deleting their items: a root that is missing,
unreadable, empty or on another filesystem, mount points that are no longer mounted, and
folders that cannot be read. Stored as JSON in the settings store, one row per library
(``library_conditions:<library id>``), written by the scan, read by whoever shows them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncd.ledger.models import Library
from syncd.ledger.settings import get_setting, put_setting, settings_with_prefix
from syncd.paths.relpath import printable_relpath

#: settings key prefix of a library's conditions (followed by the library's ledger id)
CONDITIONS_PREFIX: Final = "library_conditions:"

RootKind = Literal["unavailable", "empty", "device_changed"]
#: unavailable: missing, not a folder or unreadable; empty: no file where the ledger knows
#: some (an empty mount point); device_changed: on another filesystem, most files missing
ROOT_UNAVAILABLE: Final = "unavailable"
ROOT_EMPTY: Final = "empty"
ROOT_DEVICE_CHANGED: Final = "device_changed"

MountKind = Literal["not_mounted", "gone", "empty"]
#: not_mounted: the folder is now on the device of the folder above it; gone: no folder
#: there; empty: still mounted but holds none of the files the ledger knows there
MOUNT_NOT_MOUNTED: Final = "not_mounted"
MOUNT_GONE: Final = "gone"
MOUNT_EMPTY: Final = "empty"


def show_device(dev: int) -> str:
    """A device number as ``major:minor``, as ``/proc/self/mountinfo`` and ``stat`` show it."""
    return f"{os.major(dev)}:{os.minor(dev)}"


@dataclass(frozen=True)
class RootCondition:
    """The library root could not be trusted: nothing under it was deleted.

    ``files``: files the ledger keeps for it; ``was``/``now``: the root's devices (st_dev)
    for ``device_changed``.
    """

    kind: RootKind
    reason: str
    files: int
    was: int | None = None
    now: int | None = None


@dataclass(frozen=True)
class MissingMount:
    """A mount point under the root that the scan did not find mounted.

    ``path``: relative to the root (``/`` separators); ``device``: its st_dev when it was
    last walked; ``files``: files the ledger keeps under it (their items stay).
    """

    path: str
    device: int
    kind: MountKind
    files: int

    def describe(self) -> str:
        """What is wrong with it, in a few words."""
        path = printable_relpath(self.path)
        if self.kind == MOUNT_GONE:
            return f"mount point {path} (device {show_device(self.device)}) is gone"
        if self.kind == MOUNT_EMPTY:
            return f"mount point {path} holds none of its files (is its share mounted?)"
        return f"mount point {path} (device {show_device(self.device)}) is not mounted"


@dataclass(frozen=True)
class UnreadableFolder:
    """A folder (or file) under the root the scan could not read, and why; ``files``: files
    the ledger keeps under it (their items stay)."""

    path: str
    reason: str
    files: int

    def describe(self) -> str:
        """What is wrong with it, in a few words."""
        return f"{printable_relpath(self.path)} cannot be read ({self.reason})"


@dataclass(frozen=True)
class LibraryConditions:
    """What a library's last scan knew of its filesystems and could not see.

    ``root_device``: the root's st_dev as last accepted (None before the first scan);
    ``mounts``: (path relative to the root, st_dev) of every mount point under the root
    known from a walk. The rest are conditions, empty when the library was seen whole:
    ``root``, ``missing_mounts`` and ``unreadable``.
    """

    library: str
    root_device: int | None = None
    mounts: tuple[tuple[str, int], ...] = ()
    root: RootCondition | None = None
    missing_mounts: tuple[MissingMount, ...] = ()
    unreadable: tuple[UnreadableFolder, ...] = ()

    @property
    def clear(self) -> bool:
        """Whether the last scan saw the whole library (nothing kept unseen)."""
        return self.root is None and not self.missing_mounts and not self.unreadable

    @property
    def files_kept(self) -> int:
        """Files the ledger keeps, and whose items stay, although the scan could not see them."""
        if self.root is not None:
            return self.root.files
        return sum(m.files for m in self.missing_mounts) + sum(u.files for u in self.unreadable)

    def reasons(self) -> list[str]:
        """One line per condition, for a person (``status``, the log, health)."""
        lines: list[str] = []
        if self.root is not None:
            lines.append(f"{self.root.reason}: {files_kept(self.root.files)}")
        for mount in self.missing_mounts:
            lines.append(f"{mount.describe()}: {files_kept(mount.files)}")
        for folder in self.unreadable:
            lines.append(f"{folder.describe()}: {files_kept(folder.files)}")
        return lines

    def to_json(self) -> str:
        """The stored form."""
        data: dict[str, Any] = {
            "library": self.library,
            "root_device": self.root_device,
            "mounts": [list(m) for m in self.mounts],
            "root": None if self.root is None else vars(self.root),
            "missing_mounts": [vars(m) for m in self.missing_mounts],
            "unreadable": [vars(u) for u in self.unreadable],
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LibraryConditions:
        """Inverse of :meth:`to_json`; raises ValueError, KeyError or TypeError when garbled."""
        data = json.loads(text)
        root = data.get("root")
        return cls(
            str(data["library"]),
            None if data.get("root_device") is None else int(data["root_device"]),
            tuple((str(path), int(dev)) for path, dev in data.get("mounts", ())),
            None if root is None else RootCondition(**root),
            tuple(MissingMount(**m) for m in data.get("missing_mounts", ())),
            tuple(UnreadableFolder(**u) for u in data.get("unreadable", ())),
        )


def files_kept(count: int) -> str:
    """``its 3 files are kept`` (``its 1 file is kept``)."""
    return f"its {count} file is kept" if count == 1 else f"its {count} files are kept"


def load_conditions(session: Session, library_id: int, name: str) -> LibraryConditions:
    """The conditions the last scan of the library stored (none yet: all clear)."""
    text = get_setting(session, f"{CONDITIONS_PREFIX}{library_id}")
    if text is not None:
        try:
            return LibraryConditions.from_json(text)
        except (ValueError, KeyError, TypeError):
            pass  # written by a newer syncd or torn: the next scan writes it again
    return LibraryConditions(name)


def store_conditions(
    session: Session, library_id: int, conditions: LibraryConditions, now: float
) -> None:
    """Keep ``conditions`` as the library's; ``now`` in seconds since the epoch."""
    put_setting(session, f"{CONDITIONS_PREFIX}{library_id}", conditions.to_json(), now)


def conditions_by_library(session: Session) -> dict[str, LibraryConditions]:
    """Library name -> the conditions its last scan stored, for every library that has some."""
    names = {
        library_id: name for library_id, name in session.execute(select(Library.id, Library.name))
    }
    found: dict[str, LibraryConditions] = {}
    for key, text in settings_with_prefix(session, CONDITIONS_PREFIX).items():
        try:
            name = names.get(int(key.removeprefix(CONDITIONS_PREFIX)))
            conditions = LibraryConditions.from_json(text)
        except (ValueError, KeyError, TypeError):
            continue
        if name is not None:
            found[name] = conditions
    return found
