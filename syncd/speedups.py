"""The garbage collector tricks that keep a no-change ``reconcile`` within its target
(benchmarks/README.md), in one place. (The other speed trick, walking the tree in a child
process while this one imports, is ``syncd.scan.ahead.start_walks``.) Imports nothing of
syncd.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager


def import_for_good(module: str) -> None:
    """Import ``module``, keeping what the import makes out of garbage collection for good.

    Why: modules live as long as the process; collecting while SQLAlchemy's objects are
    made, then walking them again in each full collection and at exit, costs a no-change
    ``reconcile`` about 0.1 s.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        importlib.import_module(module)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection inside. Why: a bulk read makes a million rows and no cycle,
    and each collection while they are made would walk them all again."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
