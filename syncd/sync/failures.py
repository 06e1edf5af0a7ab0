"""What an error means for the intents it hit (docs/rules.md, Error classes), recorded once.

Rate and quota errors, and a gallery's setup error, give the intents back untouched (the
account or the gallery waits, not the item); a transient error schedules a retry with
backoff; a bad image or a bad request marks the item failed with its code and reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from syncd.errors import (
    ApiError,
    FatalSetupError,
    QuotaError,
    RateError,
    TokenError,
    TransientError,
)
from syncd.ledger.queue import Intent, held_by, record_failure, requeue
from syncd.ledger.schema import LedgerSession
from syncd.sync.context import Worker, one_line

log = logging.getLogger("syncd.sync")


def settle_error(worker: Worker, intents: Sequence[Intent], error: Exception) -> None:
    """Record what ``error`` means for these intents (one call's, or one delete batch's)."""
    if not intents:
        return
    ctx = worker.ctx
    now = ctx.clock()
    ids = [i.item_id for i in intents]
    gallery = intents[0].gallery
    op = intents[0].op
    if isinstance(error, RateError):
        give_back(worker, ids, now)
        worker.tell(op, intents, "retrying", f"too many calls ({one_line(str(error))})", now)
        return
    if isinstance(error, QuotaError):
        # no call goes out while the pause lasts; when it ends, they are due at once
        ctx.account.on_quota(error)
        give_back(worker, ids, now)
        worker.tell(op, intents, "retrying", f"quota spent ({one_line(str(error))})")
        return
    if isinstance(error, FatalSetupError | TokenError):
        ctx.account.on_setup_error(gallery, error)
        give_back(worker, ids, now)
        worker.tell(op, intents, "retrying", f"gallery stopped ({one_line(str(error))})")
        return
    code = error.code if isinstance(error, ApiError) else None
    message = one_line(error.message if isinstance(error, ApiError) else str(error))
    transient = isinstance(error, TransientError)
    # one draw for the whole batch: its deletes come due together and go out together
    at = worker.backoff(max(intents, key=lambda i: i.attempts), now) if transient else None

    def record(session: LedgerSession) -> None:
        for item_id in ids:
            record_failure(session, item_id, worker.owner, code, message, now, at)

    ctx.recorder.submit(record)
    if transient:
        worker.tell(op, intents, "retrying", one_line(str(error)), at)
    else:
        ctx.tally.bump("failed", len(intents))
        worker.tell(op, intents, "failed", one_line(str(error)))


def local_failure(worker: Worker, intent: Intent, message: str, retry: bool) -> None:
    """An add that cannot be sent for a reason of syncd's own (no API code): tried again
    after a backoff when ``retry``, else failed until the file changes or ``retry``."""
    ctx = worker.ctx
    now = ctx.clock()
    retry_at = worker.backoff(intent, now) if retry else None
    ctx.recorder.submit(
        lambda session: record_failure(
            session, intent.item_id, worker.owner, None, message, now, retry_at
        )
    )
    if not retry:
        ctx.tally.bump("failed")
        worker.tell(intent.op, [intent], "failed", message)
    else:
        worker.tell(intent.op, [intent], "retrying", message, retry_at)


def back_off_unsettled(worker: Worker, intents: Sequence[Intent], message: str) -> None:
    """Give the intents this worker still holds a backoff and ``message`` (no code)."""
    now = worker.ctx.clock()
    with worker.ctx.ledger.transaction() as session:
        held = held_by(session, [i.item_id for i in intents], worker.owner)
        for intent in intents:
            if intent.item_id in held:
                retry_at = worker.backoff(intent, now)
                record_failure(session, intent.item_id, worker.owner, None, message, now, retry_at)


def give_back(worker: Worker, item_ids: Sequence[int], at: float) -> None:
    """Hand claimed intents back, due at ``at`` (epoch s), counting no attempt."""
    worker.ctx.recorder.submit(lambda session: requeue(session, item_ids, worker.owner, at))


def release(worker: Worker, intents: Sequence[Intent]) -> None:
    """Give back claimed intents untouched (shutdown, or their gallery is closed)."""
    give_back(worker, [i.item_id for i in intents], worker.ctx.clock())
