"""The watch-to-scan hand-off (``LookAgain``) and the one settle rule
(``seconds_until_quiet``; docs/rules.md, Settle) the watcher and the scan both apply.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LookAgain:
    """Paths of one library to look at again: the watcher's only output, the targeted scan's
    only input. Relative to the library root with ``/`` separators; what each path is now
    (file, folder, gone) is for the scan to read from the disk. ``full_rescan``: the whole
    library (overflow, root back, observer failure, start-up)."""

    library: str
    paths: tuple[str, ...] = ()
    full_rescan: bool = False


def seconds_until_quiet(mtime_ns: int, now: float, settle: float) -> float:
    """Seconds (>= 0) until a file last modified at ``mtime_ns`` (ns since the epoch) has been
    quiet for ``settle`` seconds, at wall time ``now`` (seconds since the epoch); 0 when it
    already has (docs/rules.md, Settle).

    An mtime ahead of ``now`` (kept from a camera whose clock runs ahead, or set by another
    host's clock) counts as quiet: waiting would hold the file until that date, and the
    watcher still waits for its events to stop.
    """
    age = now - mtime_ns / 1e9
    return settle - age if 0 <= age < settle else 0.0
