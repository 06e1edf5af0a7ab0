"""The walk ahead of a reconcile: one child process walks the libraries while this one
imports the ledger's modules (benchmarks/README.md: a no-change reconcile starts fast).
Light to import: a door starts the walks first, then imports the use case."""

from __future__ import annotations

from syncd.scan.ahead import WalkAhead, start_walks

__all__ = ["WalkAhead", "start_walks"]
