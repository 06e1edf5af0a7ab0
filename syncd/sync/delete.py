"""Deletes: up to 1000 items per call; an error splits the batch and never blocks the rest
(docs/rules.md, Batched deletes; ``syncd.sync.batching``)."""

from __future__ import annotations

from collections.abc import Sequence

from syncd.api.baidu.galleries import GalleryName
from syncd.ledger.queue import Intent, record_deleted
from syncd.sync.batching import DeleteOutcome, delete_in_batches
from syncd.sync.context import Worker
from syncd.sync.failures import settle_error


def run_deletes(worker: Worker, gallery: str, intents: Sequence[Intent]) -> None:
    """Delete these items of ``gallery`` in batches of up to 1000."""
    ctx = worker.ctx
    name: GalleryName = gallery  # type: ignore[assignment]
    by_sign = {i.cont_sign: i for i in intents if i.cont_sign is not None}
    unnamed = [i.item_id for i in intents if i.cont_sign is None]
    if unnamed:
        now = ctx.clock()
        ctx.recorder.submit(lambda session: record_deleted(session, unnamed, worker.owner, now))
    settled: set[str] = set()

    def send(batch: Sequence[str]) -> None:
        worker.call(name, "delete", lambda: ctx.client.delete(name, cont_signs=batch))

    def record(outcome: DeleteOutcome) -> None:
        """Record what the last call settled (the outcome accumulates)."""
        fresh = [s for s in outcome.deleted if s not in settled]
        if fresh:
            ids = [by_sign[s].item_id for s in fresh]
            now = ctx.clock()
            ctx.recorder.submit(lambda session: record_deleted(session, ids, worker.owner, now))
            settled.update(fresh)
            ctx.tally.bump("deleted", len(fresh))
            worker.tell("delete", [by_sign[s] for s in fresh], "deleted")
        # the signs of one refused batch share its error: settled together
        by_error: dict[int, tuple[Exception, list[Intent]]] = {}
        for sign, error in {**outcome.failed, **outcome.retry}.items():
            if sign not in settled:
                settled.add(sign)
                by_error.setdefault(id(error), (error, []))[1].append(by_sign[sign])
        for error, group in by_error.values():
            settle_error(worker, group, error)

    outcome = delete_in_batches(list(by_sign), send, on_settled=record)
    if outcome.stopped is not None:
        settle_error(worker, [by_sign[s] for s in outcome.untried], outcome.stopped)
