"""Files a scan cannot see are unknown, not vanished.

A scan does not find some of the files the ledger knows in a library. Most were deleted;
some it could not see, and those keep their rows and items, with the library's
conditions (``syncd.ledger.conditions``) saying why:

- **unreadable**: every known path at or below a folder (or file) the walk could not read
  (permission, I/O error, a stale network handle) is kept;
- **mount points**: the scan remembers each folder under the root that is on another device
  than the folder above it, with that device. One the walk no longer finds mounted (its
  folder is gone or on the device of the folder above), or finds mounted but holding none
  of the files the ledger knows there, keeps every known file below it, until it is back
  or ``reconcile --allow-mass-delete`` forgets it (a config that hides its folder does too);
- **the root**: the scan remembers the root's device. A root on another device where most
  of the known files (more than half) are missing is another filesystem, such as the
  folder beneath an unmounted share: nothing vanishes and the old device stays remembered.
  When most are found, the new device is the library's (a remount numbered it anew) and
  what is missing vanishes as usual; ``--allow-mass-delete`` takes the new device anyway;
- a root with no file at all where the ledger knows some (an empty mount point) keeps
  every file.

``judge_unseen`` applies these rules to one scan's findings; the scanner records the rest.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from syncd.ledger.conditions import (
    MOUNT_EMPTY,
    MOUNT_GONE,
    MOUNT_NOT_MOUNTED,
    ROOT_DEVICE_CHANGED,
    ROOT_EMPTY,
    LibraryConditions,
    MissingMount,
    MountKind,
    RootCondition,
    UnreadableFolder,
    files_kept,
    show_device,
)
from syncd.paths.filters import WalkFilter
from syncd.paths.relpath import decode_relpath, printable_relpath
from syncd.scan.walk import SkippedEntry

#: paths a warning about unreadable folders names; the rest are counted
SHOWN_PATHS = 5


@dataclass
class WalkFacts:
    """What a walk said besides its files: the paths it could not read, and the mount
    points it walked (path relative to the root -> st_dev)."""

    unreadable: list[SkippedEntry] = field(default_factory=list)
    mounts: dict[str, int] = field(default_factory=dict)


@dataclass
class Judgement:
    """What becomes of the known paths a scan did not find."""

    #: stored paths that vanished (the rest are kept, unseen)
    vanished: list[bytes]
    #: how many stored paths are kept because the scan could not see them
    kept: int
    #: the library's conditions after this scan
    conditions: LibraryConditions
    #: one line per condition for the log (WARNING), without the library's name
    warnings: list[str]


def judge_unseen(
    previous: LibraryConditions,
    *,
    root: str,
    root_device: int | None,
    facts: WalkFacts,
    gone: Sequence[bytes],
    known_files: int,
    seen: int,
    skipped: int,
    flt: WalkFilter,
    allow_mass_delete: bool,
    count_under: Callable[[str], int],
    exists: Callable[[str], bool],
) -> Judgement:
    """Apply the module's rules to a whole library's scan.

    ``previous``: the conditions the last scan stored; ``root``/``root_device``: the root as
    configured and its st_dev now (None: not known); ``gone``: the stored paths the walk did
    not find (sorted); ``known_files``: the files the ledger knew before the scan;
    ``seen``/``skipped``: what the walk found. ``count_under(path)``: files the ledger knows
    at or below a path relative to the root; ``exists(path)``: whether something is at that
    path now.
    """
    unreadable = {entry.relpath: entry.reason for entry in facts.unreadable}
    kept_unreadable: Counter[str] = Counter()
    rest: list[tuple[bytes, str]] = []
    for key in gone:
        relpath = decode_relpath(key)
        holder = _outermost_in(relpath, unreadable)
        if holder is None:
            rest.append((key, relpath))
        else:
            kept_unreadable[holder] += 1

    mounts = dict(facts.mounts)
    missing: dict[str, MountKind] = {}
    for path, dev in previous.mounts:
        if path in mounts or flt.hides_dir(path):
            continue  # still mounted (perhaps numbered anew), or hidden by the config now
        if _outermost_in(path, unreadable) is not None:
            mounts[path] = dev  # under a folder that cannot be read: cannot tell
            continue
        if allow_mass_delete:
            continue  # forgotten: what it held vanishes
        mounts[path] = dev
        missing[path] = MOUNT_NOT_MOUNTED if exists(path) else MOUNT_GONE
    if not allow_mass_delete:
        gone_under: Counter[str] = Counter()
        for _, relpath in rest:
            for path in at_or_above(relpath):
                if path in facts.mounts:
                    gone_under[path] += 1
        for path, count in gone_under.items():
            if count_under(path) <= count:
                missing[path] = MOUNT_EMPTY

    kept_mount: Counter[str] = Counter()
    left: list[tuple[bytes, str]] = []
    for key, relpath in rest:
        holder = _outermost_in(relpath, missing)
        if holder is None:
            left.append((key, relpath))
        else:
            kept_mount[holder] += 1

    kept = len(gone) - len(left)
    root_condition: RootCondition | None = None
    device = previous.root_device if root_device is None else root_device
    shown = printable_relpath(root)
    if gone and seen == 0 and skipped == 0:
        root_condition = RootCondition(
            ROOT_EMPTY, f"library root {shown} is empty (is its share mounted?)", len(gone)
        )
        device = previous.root_device if previous.root_device is not None else device
    elif (
        previous.root_device is not None
        and root_device is not None
        and root_device != previous.root_device
        and not allow_mass_delete
        and left
        and 2 * len(gone) > known_files
    ):
        root_condition = RootCondition(
            ROOT_DEVICE_CHANGED,
            f"library root {shown} is on another filesystem than at the last scan (device "
            f"{show_device(root_device)}, was {show_device(previous.root_device)}) and "
            f"{len(gone)} of its {known_files} files are missing (is its share mounted?)",
            len(gone),
            previous.root_device,
            root_device,
        )
        device = previous.root_device
    if root_condition is not None:
        left = []
        kept = len(gone)

    reported = [p for p in sorted(missing) if _outermost_in(p, missing) == p]
    conditions = LibraryConditions(
        previous.library,
        device,
        tuple(sorted(mounts.items())),
        root_condition,
        tuple(
            MissingMount(path, mounts[path], missing[path], kept_mount[path]) for path in reported
        ),
        unreadable_folders(facts.unreadable, kept_unreadable),
    )
    return Judgement([key for key, _ in left], kept, conditions, _warnings(conditions))


def look_at_mounts(
    previous: LibraryConditions,
    *,
    targets: Sequence[str],
    facts: WalkFacts,
    gone: Iterable[bytes],
    flt: WalkFilter,
    is_mount: Callable[[str], bool],
    count_under: Callable[[str], int],
) -> tuple[bool, set[str]]:
    """For a scan of some paths of a library only (``targets``, relative to the root):
    whether its mount points there are not as the last whole scan left them, so that only a
    whole scan can judge them; else the mount points still missing, whose files stay kept.

    ``facts``/``gone``: what the walk at the targets found and which stored paths there it
    did not find; ``is_mount(path)``: whether a folder above a target is a mount point now;
    ``count_under``: as for :func:`judge_unseen`.
    """
    known = dict(previous.mounts)
    missing_before = {mount.path for mount in previous.missing_mounts}
    for path, dev in facts.mounts.items():
        if known.get(path) != dev or path in missing_before:
            return True, set()  # a new mount point, one numbered anew, or one back
    unreadable = dict.fromkeys(entry.relpath for entry in facts.unreadable)
    still_missing: set[str] = set()
    for path in known:
        walked = any(at_or_below(path, target) for target in targets)
        if not walked and not any(at_or_below(target, path) for target in targets):
            continue
        if flt.hides_dir(path) or _outermost_in(path, unreadable) is not None:
            continue
        mounted = path in facts.mounts if walked else is_mount(path)
        if mounted == (path in missing_before):
            return True, set()  # dropped since the whole scan, or back
        if not mounted:
            still_missing.add(path)
    gone_under: Counter[str] = Counter()
    for key in gone:
        for path in at_or_above(decode_relpath(key)):
            if path in facts.mounts:
                gone_under[path] += 1
    if any(count_under(path) <= count for path, count in gone_under.items()):
        return True, set()  # a mount point that holds none of its files
    return False, still_missing


def at_or_below(path: str, top: str) -> bool:
    """Whether ``path`` is ``top`` or inside it (both relative to the root)."""
    return path == top or path.startswith(top + "/")


def unreadable_folders(
    entries: Iterable[SkippedEntry], kept: Mapping[str, int]
) -> tuple[UnreadableFolder, ...]:
    """The conditions of the paths a walk could not read; ``kept``: files kept below each."""
    return tuple(
        UnreadableFolder(entry.relpath, entry.reason, kept.get(entry.relpath, 0))
        for entry in sorted(entries, key=lambda e: e.relpath)
    )


def unreadable_warning(folders: Sequence[UnreadableFolder]) -> str:
    """The one line saying which paths a scan could not read and how many files it kept."""
    dirs = sum(1 for f in folders if "directory" in f.reason)
    noun = "folders" if dirs == len(folders) else "paths"
    if len(folders) == 1:
        noun = noun[:-1]
    by_cause: dict[str, list[str]] = {}
    for folder in folders[:SHOWN_PATHS]:
        by_cause.setdefault(_short_cause(folder.reason), []).append(printable_relpath(folder.path))
    named = "; ".join(f"{cause}: {', '.join(paths)}" for cause, paths in by_cause.items())
    if len(folders) > SHOWN_PATHS:
        named += ", …"
    files = sum(f.files for f in folders)
    return (
        f"{len(folders)} {noun} could not be read ({named}); "
        f"their {files} known file{'s are' if files != 1 else ' is'} kept"
    )


def _warnings(conditions: LibraryConditions) -> list[str]:
    lines: list[str] = []
    root = conditions.root
    if root is not None:
        lines.append(f"{root.reason}: {files_kept(root.files)}, nothing is deleted")
    for mount in conditions.missing_mounts:
        lines.append(
            f"{mount.describe()}: {files_kept(mount.files)}, not deleted (if it is gone for "
            "good, `syncd reconcile --allow-mass-delete` lets their items go)"
        )
    if conditions.unreadable:
        lines.append(unreadable_warning(conditions.unreadable))
    return lines


def _short_cause(reason: str) -> str:
    """``permission denied`` out of ``cannot open directory: Permission denied``."""
    return reason.rpartition(": ")[2].lower() or reason


def at_or_above(relpath: str) -> Iterable[str]:
    """``a``, ``a/b``, ``a/b/c`` for ``a/b/c``: the folders above a path, outermost first,
    then the path."""
    start = 0
    while True:
        cut = relpath.find("/", start)
        if cut < 0:
            yield relpath
            return
        yield relpath[:cut]
        start = cut + 1


def _outermost_in(relpath: str, paths: Mapping[str, object]) -> str | None:
    """The outermost of ``paths`` at or above ``relpath``, or None."""
    if not paths:
        return None
    return next((path for path in at_or_above(relpath) if path in paths), None)


def device_of(root: str) -> int | None:
    """The st_dev of the root (following a symlink, as the walk does), or None."""
    try:
        return os.stat(root).st_dev
    except OSError:
        return None
