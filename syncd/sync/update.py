"""Updates: give a gallery item the brief and tags the ledger wants (a rename, a move, a
rule change: one call; docs/rules.md, One update per rename)."""

from __future__ import annotations

import logging

from syncd.api.baidu.galleries import GalleryName
from syncd.errors import ApiError, ItemMissingError, ValidationError
from syncd.ledger.queue import Intent, record_deleted, record_updated
from syncd.sync.context import Worker, where
from syncd.sync.failures import settle_error

log = logging.getLogger("syncd.sync")


def run_update(worker: Worker, intent: Intent) -> None:
    """Set the item's brief and tags; an item the gallery lost is added again."""
    ctx = worker.ctx
    gallery: GalleryName = intent.gallery  # type: ignore[assignment]
    assert intent.cont_sign is not None
    cont_sign = intent.cont_sign
    try:
        worker.call(
            gallery,
            "update",
            lambda: ctx.client.update(
                gallery, cont_sign=cont_sign, brief=intent.brief, tags=intent.tags
            ),
        )
    except ItemMissingError:
        # gone (or a deleted item still shown): remember it as deleted and add it again
        now = ctx.clock()
        ctx.recorder.submit(
            lambda session: record_deleted(session, [intent.item_id], worker.owner, now)
        )
        worker.tell("update", [intent], "retrying", "the gallery no longer holds the item; "
                    "adding it again", now)  # fmt: skip
        log.debug("%s: the gallery lost %s; adding it again", where(intent), cont_sign)
        return
    except (ApiError, ValidationError) as error:
        settle_error(worker, [intent], error)
        return
    now = ctx.clock()
    ctx.recorder.submit(
        lambda session: record_updated(
            session, intent.item_id, worker.owner, intent.brief, intent.tags, now
        )
    )
    ctx.tally.bump("updated")
    worker.tell("update", [intent], "updated")
