"""``syncd retry``: queue failed files, and calls waiting on a backoff after errors, again
(README, Commands). The paths named are resolved here; the ledger does the rest
(``syncd.ledger.retry``)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from syncd.config import Config
from syncd.errors import ConfigError
from syncd.ledger.retry import queue_failures_again
from syncd.ledger.schema import open_ledger
from syncd.scan.scanner import select_libraries


@dataclass(frozen=True)
class RetryResult:
    """What ``syncd retry`` queued again: failed items, refused files to read again, and
    whether it lifted a quota pause or gallery stops (calls are tried again at once)."""

    items: int
    files: int
    lifted: list[str] = field(default_factory=list)
    #: items that were waiting on a backoff after an error (a network outage, a 5xx)
    waiting: int = 0


def _relative_under(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators ("" for the root), or None."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    return "" if rel == Path(".") else rel.as_posix()


def retry_failures(
    config: Config, names: Sequence[str] = (), paths: Sequence[Path] = ()
) -> RetryResult:
    """Queue the failed files of the libraries named (all when none), or only those at or
    under ``paths`` (files or folders), for another try.

    Failed items, and items waiting on a backoff after errors (the user fixed the network),
    become due now; files refused by the scan (not an image, unreadable) are read again by
    the next scan. A quota pause and gallery stops are lifted: the next call
    tells whether the cause is gone. Raises ConfigError for a path outside every library.
    """
    libraries = select_libraries(config, names)
    wanted: dict[str, list[str]] = {}
    for raw in paths:
        absolute = Path(os.path.abspath(raw))
        hits = [
            (lib.name, rel)
            for lib in libraries
            if (rel := _relative_under(absolute, Path(os.path.abspath(lib.root)))) is not None
        ]
        if not hits:
            raise ConfigError(f"{raw}: not inside the root of any library selected")
        for name, rel in hits:
            wanted.setdefault(name, []).append(rel)
    chosen = [lib.name for lib in libraries if not paths or lib.name in wanted]
    ledger = open_ledger(config.ledger, create=False)
    try:
        with ledger.transaction() as session:
            done = queue_failures_again(
                session,
                chosen,
                sorted({lib.gallery for lib in libraries}),
                wanted if paths else None,
                time.time(),
            )
        return RetryResult(done.items, done.files, done.lifted, done.waiting)
    finally:
        ledger.close()
