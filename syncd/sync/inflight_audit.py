"""Settling adds whose answers were lost (a crash, a timeout), from the spool beside them
(``syncd.sync.inflight``).

A spooled content whose item the ledger knows by now is done; one the ledger still wants
is left to its pending add (a 216681 adopts the item). For the others (the file went
meanwhile) the gallery is searched with the image, and an item carrying the brief that add
sent, which the ledger does not know, is deleted.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from syncd.api.baidu.galleries import GalleryName
from syncd.errors import (
    ApiError,
    FatalSetupError,
    ItemMissingError,
    QuotaError,
    RateError,
    TokenError,
    TransientError,
    ValidationError,
)
from syncd.ledger.items import ContentState, content_state, known_signs
from syncd.ledger.tombstones import record_tombstones
from syncd.sync.add import ADOPTION_SEARCH_RN
from syncd.sync.context import Worker
from syncd.sync.inflight import SpooledAdd

log = logging.getLogger("syncd.sync")

#: errors that say the gallery cannot answer now (a later call may work)
_NOT_NOW = (TransientError, RateError, QuotaError, FatalSetupError, TokenError)


def audit_spool(worker: Worker, galleries: Sequence[str]) -> int:
    """Settle the spooled adds of ``galleries`` whose answers were never recorded. Returns
    the items deleted; an entry whose calls fail stays for the next audit."""
    ctx = worker.ctx
    spool = ctx.spool
    if spool is None:
        return 0
    removed = 0
    for entry in spool.entries():
        if entry.gallery not in galleries:
            continue
        with ctx.ledger.transaction() as session:
            state = content_state(session, entry.gallery, entry.content_hash)
        if state is ContentState.WANTED:
            continue
        if state is ContentState.GONE:
            try:
                removed += _delete_orphans(worker, entry)
            except _NOT_NOW as error:
                # the gallery cannot answer now: the rest waits for the next audit too
                log.info("cannot look for items left by lost adds yet: %s", error)
                break
            except (ApiError, ValidationError) as error:
                # refused for good: asking again would loop
                log.warning("cannot look for an item left by a lost add (%s): %s",
                            entry.brief, error)  # fmt: skip
        spool.drop(entry.gallery, entry.content_hash)
    return removed


def _delete_orphans(worker: Worker, entry: SpooledAdd) -> int:
    """Delete the items a lost add of ``entry`` left, if any; how many there were."""
    ctx = worker.ctx
    gallery: GalleryName = entry.gallery  # type: ignore[assignment]
    page = worker.call(
        gallery,
        "search",
        lambda: ctx.client.search(gallery, image=entry.data, rn=ADOPTION_SEARCH_RN),
    )
    signs = [hit.cont_sign for hit in page.hits if hit.brief == entry.brief]
    if not signs:
        return 0
    with ctx.ledger.transaction() as session:
        known = known_signs(session, gallery, signs)
    orphans = [sign for sign in dict.fromkeys(signs) if sign not in known]
    if not orphans:
        return 0
    with contextlib.suppress(ItemMissingError):  # gone already: as good
        worker.call(gallery, "delete", lambda: ctx.client.delete(gallery, cont_signs=orphans))
    now = ctx.clock()
    with ctx.ledger.transaction() as session:
        record_tombstones(session, gallery, orphans, entry.content_hash, now)
    ctx.tally.bump("deleted", len(orphans))
    log.info("deleted %d gallery item(s) a lost add left behind (%s)", len(orphans),
             entry.brief)  # fmt: skip
    return len(orphans)
