"""Which paths a library takes: the glob dialect of the config's include, exclude and ignore
globs (``PathMatcher``, ``glob_to_regex``), one library's filter (``WalkFilter``), and the NAS
and OS system folders no library holds (``SYSTEM_FOLDERS``). The walk, the watcher and the
tag rules all match with these.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final, Protocol

_GLOB_FLAGS: Final = re.DOTALL


def _translate_component(comp: str) -> str:
    """Regex source of one path component of a glob (``*``, ``?``, ``[...]`` never match ``/``)."""
    out: list[str] = []
    i, n = 0, len(comp)
    while i < n:
        ch = comp[i]
        i += 1
        if ch == "*":
            while i < n and comp[i] == "*":
                i += 1
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            j = i
            if j < n and comp[j] in "!^":
                j += 1
            if j < n and comp[j] == "]":
                j += 1
            while j < n and comp[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(ch))  # no closing bracket: a literal '['
                continue
            body = comp[i:j]
            i = j + 1
            negate = body[0] in "!^"
            if negate:
                body = body[1:]
            members = "".join(c if c == "-" else re.escape(c) for c in body)
            out.append(f"[^/{members}]" if negate else f"[{members}]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def glob_to_regex(pattern: str) -> str:
    """Regex source (for ``fullmatch``) of a path glob relative to the root.

    ``*``/``?``/``[...]`` stay within one component; a ``**`` component spans any number
    of directories (``a/**/b`` matches ``a/b`` and ``a/x/y/b``; a trailing ``**`` matches
    everything below). A leading ``/`` only anchors (patterns with a slash are anchored
    anyway); a trailing ``/`` means everything below that directory.
    """
    comps = pattern.strip("/").split("/")
    if pattern.endswith("/"):
        comps.append("**")
    parts: list[str] = []
    last = len(comps) - 1
    for idx, comp in enumerate(comps):
        if comp == "**":
            parts.append(".*" if idx == last else "(?:.*/)?")
        else:
            parts.append(_translate_component(comp) + ("" if idx == last else "/"))
    return "".join(parts)


def _union(sources: Iterable[str]) -> str | None:
    """Regex source of the union of regex sources, or None when there are none."""
    items = list(sources)
    return "|".join(f"(?:{src})" for src in items) if items else None


def _fullmatcher(source: str | None, flags: int) -> Callable[[str], object] | None:
    """A ``fullmatch`` callable for a regex source, or None for None."""
    return None if source is None else re.compile(source, flags).fullmatch


# -- globs and filters ------------------------------------------------------------------------


class PathMatcher:
    """Matches paths relative to a root against globs (the include/exclude/rule dialect).

    A pattern without ``/`` matches the basename at any depth (``*.jpg``); one with ``/``
    matches the whole relative path (see ``glob_to_regex``). Matching ignores case by
    default, so ``*.jpg`` takes ``IMG_0001.JPG``. A bad pattern raises ``ValueError``
    naming it.
    """

    __slots__ = ("_base", "_path", "base_source", "flags", "patterns", "prune_dir")

    def __init__(self, patterns: Iterable[str], *, ignore_case: bool = True) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        flags = _GLOB_FLAGS | (re.IGNORECASE if ignore_case else 0)
        base: list[str] = []
        path: list[str] = []
        subtree: list[str] = []
        for pat in self.patterns:
            if not pat.strip("/"):
                raise ValueError(f"empty glob pattern {pat!r}")
            try:
                if "/" in pat:
                    path.append(re.compile(glob_to_regex(pat)).pattern)
                    body = pat.strip("/")
                    if body.endswith("/**") or pat.endswith("/"):
                        subtree.append(glob_to_regex(body.removesuffix("/**")))
                else:
                    base.append(re.compile(_translate_component(pat)).pattern)
            except re.error as exc:
                raise ValueError(f"bad glob pattern {pat!r}: {exc}") from None
        self.flags = flags
        #: regex source of the basename-only patterns (None when there are none)
        self.base_source = _union(base)
        self._base = _fullmatcher(self.base_source, flags)
        self._path = _fullmatcher(_union(path), flags)
        #: matches a directory's relpath when every path below it matches (``dir/**``)
        self.prune_dir = _fullmatcher(_union(subtree), flags)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, relpath: str, name: str | None = None) -> bool:
        """Whether ``relpath`` (its basename may be passed as ``name`` to save a split) matches."""
        if self._base is not None:
            if name is None:
                name = relpath.rpartition("/")[2]
            if self._base(name):
                return True
        return self._path is not None and self._path(relpath) is not None


#: a set of name globs of the forms ``lit*``, ``*lit``, ``lit`` and ``*``, lowercased:
#: (prefixes, suffixes, whole names, whether ``*`` is among them)
_Affixes = tuple[tuple[str, ...], tuple[str, ...], frozenset[str], bool]


def _affixes(patterns: Iterable[str]) -> _Affixes | None:
    """The globs as prefixes, suffixes and names, or None when one is of another form (a
    ``?``, a ``[...]``, a ``*`` inside) or not ASCII."""
    prefixes: list[str] = []
    suffixes: list[str] = []
    names: set[str] = set()
    every = False
    for pattern in patterns:
        if not pattern.isascii() or "?" in pattern or "[" in pattern or "/" in pattern:
            return None
        literal = pattern.strip("*").lower()
        starts, ends = pattern.startswith("*"), pattern.endswith("*")
        if not literal:
            every = True  # only stars
        elif "*" in literal or (starts and ends):
            return None
        elif starts:
            suffixes.append(literal)
        elif ends:
            prefixes.append(literal)
        else:
            names.add(literal)
    return tuple(prefixes), tuple(suffixes), frozenset(names), every


def _affix_matcher(
    take: Iterable[str], skip: Iterable[str], regex: Callable[[str], object]
) -> Callable[[str], bool] | None:
    """Whether a basename is taken by ``take`` (all when empty) and not hidden by ``skip``,
    by string methods instead of ``regex`` (three times faster) when every glob is a plain
    prefix, suffix or name; None when one is not. Names that are not ASCII go to ``regex``:
    only for ASCII is ``str.lower`` the same as the regex's case-insensitive match."""
    taken, hidden = tuple(take), _affixes(skip)
    took = _affixes(taken) if taken else ((), (), frozenset(), True)
    if took is None or hidden is None:
        return None
    take_prefixes, take_suffixes, take_names, take_all = took
    skip_prefixes, skip_suffixes, skip_names, skip_all = hidden

    def quick(name: str) -> bool:
        if not name.isascii():
            return regex(name) is not None
        low = name.lower()
        if skip_all or low.startswith(skip_prefixes) or low.endswith(skip_suffixes):
            return False
        if low in skip_names:
            return False
        return (
            take_all
            or low.endswith(take_suffixes)
            or low.startswith(take_prefixes)
            or low in take_names
        )

    return quick


class _LibraryGlobs(Protocol):
    """The globs of a ``[[library]]`` (``syncd.config.LibraryConfig``)."""

    @property
    def include(self) -> Iterable[str]: ...

    @property
    def exclude(self) -> Iterable[str]: ...


class _WatchGlobs(Protocol):
    """The ``[watch]`` globs (``syncd.config.WatchConfig``)."""

    @property
    def ignore(self) -> Iterable[str]: ...


class WalkFilter:
    """Which paths a library takes: its include/exclude globs and the ``[watch] ignore`` globs.

    ``include`` and ``exclude`` follow ``PathMatcher`` (an empty ``include`` takes every
    file). ``ignore`` patterns match the basename of every path component, so ``.*`` hides
    dotfiles and prunes hidden directories with everything in them. All matching ignores case.
    """

    __slots__ = ("exclude", "ignore", "include", "_ignore", "_quick")

    def __init__(
        self,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        ignore: Iterable[str] = (),
    ) -> None:
        self.include = PathMatcher(include)
        self.exclude = PathMatcher(exclude)
        self.ignore: tuple[str, ...] = tuple(ignore)
        sources: list[str] = []
        for pat in self.ignore:
            if "/" in pat or not pat:
                raise ValueError(f"ignore pattern {pat!r} must be a plain name pattern without '/'")
            try:
                sources.append(re.compile(_translate_component(pat)).pattern)
            except re.error as exc:
                raise ValueError(f"bad ignore pattern {pat!r}: {exc}") from None
        ignore_source = _union(sources)
        self._ignore = _fullmatcher(ignore_source, _GLOB_FLAGS | re.IGNORECASE)
        #: one call on the basename deciding ignore + include for a file, when no path
        #: pattern is involved (the usual config): the walk's hot path makes one per file
        self._quick: Callable[[str], object] | None = None
        inc = self.include
        if not self.exclude and inc._path is None:
            take = inc.base_source or ".*"
            skip = f"(?!(?:{ignore_source})\\Z)" if ignore_source else ""
            regex = re.compile(skip + f"(?:{take})", inc.flags).fullmatch
            self._quick = _affix_matcher(inc.patterns, self.ignore, regex) or regex

    @classmethod
    def for_library(cls, library: _LibraryGlobs, watch: _WatchGlobs) -> WalkFilter:
        """The filter of one ``[[library]]`` under the ``[watch] ignore`` globs and the
        system folders in force (:func:`ignore_globs`)."""
        return cls(library.include, library.exclude, ignore_globs(watch.ignore))

    def ignores_name(self, name: str) -> bool:
        """Whether a file or directory basename is hidden by the ignore globs."""
        return self._ignore is not None and self._ignore(name) is not None

    def ignored_part(self, relpath: str) -> str | None:
        """The first component of ``relpath`` (folder or file name) the ignore globs hide,
        or None."""
        if self._ignore is None:
            return None
        return next((part for part in relpath.split("/") if self._ignore(part)), None)

    def takes_file(self, relpath: str, name: str) -> bool:
        """Include/exclude verdict for a file whose basename (not ignored) is ``name``."""
        if self.include and not self.include.matches(relpath, name):
            return False
        return not (self.exclude and self.exclude.matches(relpath, name))

    def prunes_dir(self, relpath: str) -> bool:
        """Whether nothing under directory ``relpath`` can be taken (``exclude = ["dir/**"]``)."""
        prune = self.exclude.prune_dir
        return prune is not None and prune(relpath) is not None

    def hides_dir(self, relpath: str) -> bool:
        """Whether the walk never enters the directory ``relpath`` (relative to the root):
        an ignored name on the way, or an exclude that prunes it or a folder above it.
        False for the root ("")."""
        if not relpath:
            return False
        parts = relpath.split("/")
        return any(self.ignores_name(part) for part in parts) or any(
            self.prunes_dir("/".join(parts[:i])) for i in range(1, len(parts) + 1)
        )

    def accepts(self, relpath: str) -> bool:
        """Whether a file at ``relpath`` belongs to the library, as the walk would take it."""
        folder, _, name = relpath.rpartition("/")
        return (
            not self.ignores_name(name)
            and not self.hides_dir(folder)
            and self.takes_file(relpath, name)
        )

    def accepts_path(self, relpath: str, is_dir: bool) -> bool:
        """Whether a path the watcher names is the library's business: a file the walk would
        take, or a folder it would enter."""
        return not self.hides_dir(relpath) if is_dir else self.accepts(relpath)


# -- NAS and OS system folders --------------------------------------------------------------

#: Names (files and folders, at any depth) that are never a library's: the thumbnail caches,
#: recycle bins and snapshot folders that NAS systems keep inside shares, and the litter
#: desktop clients leave on them. Photos in them are copies or deleted files: a thumbnail
#: must not name an item, and a move into a recycle bin is a delete. Always in force,
#: before the ``[watch] ignore`` globs; an ``ignore`` entry ``"!name"`` takes one back.
SYSTEM_FOLDERS: Final[tuple[str, ...]] = (
    # Synology DSM: the per-folder cache of thumbnails and indexing data (with the
    # SYNOPHOTO_THUMB_* / SYNOFILE_THUMB_* files in it), a share's recycle bin, its
    # visible snapshots, and the volume's temporary and shared-bin folders
    "@eaDir",
    "SYNOPHOTO_THUMB_*",
    "SYNOFILE_THUMB_*",
    "#recycle",
    "#snapshot",
    "@tmp",
    "@sharebin",
    # QNAP QTS: the network recycle bin, visible snapshots, thumbnail caches, and Samba's
    # store of alternate data streams (streams_depot)
    "@Recycle",
    "@Recently-Snapshot",
    ".@__thumb",
    "@__thumb",
    ".streams",
    # ZFS (TrueNAS and others): the control folder holding .zfs/snapshot, listed when the
    # dataset's snapdir is "visible"
    ".zfs",
    # snapshot folders of other filers (NetApp: .snapshot, ~snapshot; snapper on btrfs:
    # .snapshots) and Samba's vfs_recycle bin
    ".snapshot",
    "~snapshot",
    ".snapshots",
    ".recycle",
    # Windows on a share or a disk: recycle bins (Vista and later, XP), restore points and
    # indexing data, thumbnail caches, folder settings
    "$RECYCLE.BIN",
    "RECYCLER",
    "System Volume Information",
    "Thumbs.db",
    "ehthumbs.db",
    "ehthumbs_vista.db",
    "desktop.ini",
    # macOS clients: Finder settings, AppleDouble files ("._photo.jpg" holds no photo) and
    # folders, Spotlight, trash, fsevents, AFP server folders, zip archives' metadata
    ".DS_Store",
    "._*",
    ".AppleDouble",
    ".AppleDB",
    ".AppleDesktop",
    ".apdisk",
    ".Spotlight-V100",
    ".Trashes",
    ".fseventsd",
    ".TemporaryItems",
    ".DocumentRevisions-V100",
    "Network Trash Folder",
    "Temporary Items",
    "__MACOSX",
    # Linux desktops (the freedesktop.org trash: .Trash, .Trash-<uid>) and file systems
    ".Trash",
    ".Trash-*",
    "lost+found",
)
#: the prefix of an ``[watch] ignore`` entry that takes a name back from SYSTEM_FOLDERS
TAKE_BACK: Final = "!"


def system_folders_in_force(ignore: Iterable[str]) -> tuple[str, ...]:
    """The entries of :data:`SYSTEM_FOLDERS` in force under the ``[watch] ignore`` globs
    ``ignore``: all but those an ``"!name"`` entry takes back (compared ignoring case).

    Raises ``ValueError`` naming an ``"!name"`` entry that is not one of them.
    """
    entries = [entry for entry in ignore if entry.startswith(TAKE_BACK)]
    taken = {entry[len(TAKE_BACK) :].lower() for entry in entries}
    built_in = {name.lower() for name in SYSTEM_FOLDERS}
    unknown = [entry for entry in entries if entry[len(TAKE_BACK) :].lower() not in built_in]
    if unknown:
        shown = ", ".join(repr(entry) for entry in unknown)
        raise ValueError(
            f"{shown} takes back no built-in system folder name (they are: "
            f"{', '.join(SYSTEM_FOLDERS)})"
        )
    return tuple(name for name in SYSTEM_FOLDERS if name.lower() not in taken)


def ignore_globs(ignore: Iterable[str]) -> tuple[str, ...]:
    """The ignore globs a library's walk and watcher apply under ``[watch] ignore = ignore``:
    the system folders in force (:func:`system_folders_in_force`), then the other entries.

    Raises ``ValueError`` as :func:`system_folders_in_force` does.
    """
    entries = tuple(ignore)
    return system_folders_in_force(entries) + tuple(
        entry for entry in entries if not entry.startswith(TAKE_BACK)
    )
