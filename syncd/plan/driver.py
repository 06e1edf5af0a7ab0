"""The planner's driver: drain the ledger's ``plan_queue`` through the pure planner.

Every stage that changes what the gallery should hold (a scan, the watcher's targeted
scans, a vanished file's grace running out, an adoption merging two items) queues contents
in the ledger and then calls :func:`plan_pending`; nothing else writes intents. The tag
rules come from :class:`PlanRules`, built from the config in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from syncd.config import Config, TagRule
from syncd.ledger.hosts import library_rules
from syncd.ledger.intents import (
    PLAN_CHUNK,
    ReplanStats,
    drop_planned,
    load_plan_facts,
    next_plan_batch,
    queue_expired_vanished,
    write_plan,
)
from syncd.ledger.models import LANE_BULK, LANE_LIVE
from syncd.ledger.schema import Ledger
from syncd.plan.planner import plan_gallery


@dataclass(frozen=True)
class PlanRules:
    """What the planner needs of the config: each library's tag rules, and the seconds a
    vanished file waits before its item is deleted (``watch.delete_grace``)."""

    rules: Mapping[str, Sequence[TagRule]]
    delete_grace: float

    @classmethod
    def of(cls, config: Config) -> PlanRules:
        """The planning rules of ``config``."""
        return cls({lib.name: lib.rules for lib in config.libraries}, config.watch.delete_grace)


def plan_pending(
    ledger: Ledger, rules: PlanRules, now: float, chunk: int = PLAN_CHUNK, *, live: bool = False
) -> ReplanStats:
    """Plan every queued content (and every vanished file past its grace) into item
    intents, ``chunk`` contents per transaction; ``now`` in seconds since the epoch.

    ``live``: the changes are what the watcher saw a person do; their intents go ahead of a
    scan's backlog (docs/rules.md, Fresh changes first), which waits in the bulk lane,
    newest file first."""
    stats = ReplanStats()
    with ledger.transaction() as session:
        queue_expired_vanished(session, now, rules.delete_grace)
        # other hosts' libraries plan with their owners' rules; ours as configured
        by_library = {**library_rules(session), **rules.rules}
    while True:
        with ledger.transaction() as session:
            batch = next_plan_batch(session, chunk)
            if batch is None:
                return stats
            facts = load_plan_facts(session, batch)
            plan = plan_gallery(
                batch.contents,
                facts.items,
                facts.files,
                batch.transitions,
                by_library,
                now,
                rules.delete_grace,
            )
            write_plan(
                session, batch.gallery, facts, plan, now, stats, LANE_LIVE if live else LANE_BULK
            )
            stats.planned_contents += len(batch.contents)
            drop_planned(session, batch)
