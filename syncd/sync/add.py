"""Adds: read the item's image from its source file, send it, record the answer; on 216681
adopt the item the gallery already holds (docs/rules.md, Duplicate adds).

Each add keeps the bytes it sends in the spool (``syncd.sync.inflight``) until its answer
is recorded, so an answer lost to a crash or a timeout can be settled later
(``syncd.sync.inflight_audit``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from syncd.api.baidu.galleries import GalleryName
from syncd.errors import ApiError, ItemExistsError, TransientError, ValidationError
from syncd.ledger.items import holders_of, holds, item_for_cont_sign, set_have
from syncd.ledger.queue import (
    AddedItem,
    Intent,
    merge_items,
    record_added,
    record_adds,
    record_failure,
    wait_out_latency,
)
from syncd.ledger.schema import LedgerSession
from syncd.ledger.tombstones import content_deleted_at, deleted_at
from syncd.scan.prepare import ImageRejected, prepare_image
from syncd.sync.adopt import (
    MAX_ADOPTION_ROUNDS,
    AddAfter,
    Adopt,
    AdoptionDecision,
    decide_adoption,
    decide_named_adoption,
)
from syncd.sync.context import Stopping, Worker, one_line, where
from syncd.sync.failures import local_failure, settle_error

log = logging.getLogger("syncd.sync")

#: hits asked for when searching for the item a 216681 is about (the best few matter)
ADOPTION_SEARCH_RN = 20

_NO_MATCH = "the gallery says it holds this image but no search hit matches it"
_DELETED_LATELY = "syncd deleted this image lately and the gallery still holds it"


def run_add(worker: Worker, intent: Intent) -> None:
    """Send the item's image from its source file; adopt on 216681."""
    ctx = worker.ctx
    gallery: GalleryName = intent.gallery  # type: ignore[assignment]
    image = _read_source(worker, intent)
    if image is None:
        return
    _spool(worker, intent, image)
    try:
        result = worker.call(
            gallery,
            "add",
            lambda: ctx.client.add(gallery, image=image, brief=intent.brief, tags=intent.tags),
        )
    except Stopping:
        unspool(worker, intent)  # not sent
        raise
    except ItemExistsError as exists:
        _adopt(worker, intent, image, exists)
        unspool(worker, intent)  # this add made no item
        return
    except TransientError as error:
        # the add may have been made and only its answer lost: the spool keeps the image
        settle_error(worker, [intent], error)
        return
    except (ApiError, ValidationError) as error:
        unspool(worker, intent)  # refused: nothing was added
        settle_error(worker, [intent], error)
        return
    ctx.recorder.submit(AddAnswer(worker, intent, result.cont_sign, ctx.clock()))
    ctx.tally.bump("added")
    worker.tell("add", [intent], "added")
    log.debug("%s: added as %s", where(intent), result.cont_sign)


def _read_source(worker: Worker, intent: Intent) -> bytes | None:
    """The bytes to send for an add, or None after recording why there are none."""
    lib = worker.ctx.libraries.get(intent.library or "")
    if lib is None or intent.relpath is None:
        local_failure(worker, intent, "no live file of this image to read yet", retry=True)
        return None
    path = lib.root / intent.relpath
    try:
        prepared = prepare_image(path, lib.oversize)
    except ImageRejected as rejected:
        local_failure(worker, intent, one_line(rejected.reason), retry=False)
        return None
    except OSError as exc:
        local_failure(worker, intent, f"cannot read the file: {exc.strerror or exc}", retry=True)
        return None
    if (
        not prepared.converted
        and intent.content_hash
        and hashlib.sha256(prepared.data).hexdigest() != intent.content_hash
    ):
        local_failure(worker, intent, "the file changed since it was scanned", retry=True)
        return None
    return prepared.data


def _spool(worker: Worker, intent: Intent, image: bytes) -> None:
    """Keep the image of an add about to be sent, until its answer is recorded."""
    spool = worker.ctx.spool
    if spool is None or intent.content_hash is None:
        return
    spool.keep(
        intent.gallery, intent.content_hash, intent.brief, intent.tags, worker.ctx.clock(), image
    )


def unspool(worker: Worker, intent: Intent) -> None:
    """The add's answer is recorded, or it made no item: forget its image."""
    if worker.ctx.spool is not None and intent.content_hash is not None:
        worker.ctx.spool.drop(intent.gallery, intent.content_hash)


@dataclass
class AddAnswer:
    """A successful add, to be recorded: the item is ``cont_sign`` in its gallery now.

    The answers of one group are recorded together (``record_group``): one query finds
    whether the ledger already names another item by the same cont_sign, and the plain
    ones (no other) are written in one bulk update. Once recorded, the add's spooled
    image is dropped (after the commit: until then a crash must find it).
    """

    worker: Worker
    intent: Intent
    cont_sign: str
    now: float
    #: the ledger's item named by ``cont_sign`` (None: no other), known after the prefetch
    holder: int | None = None
    prefetched: bool = False
    #: written by ``record_group`` in this group's transaction
    recorded: bool = False

    def reset(self) -> None:
        """Forget what a group transaction that failed did (it is recorded on its own)."""
        self.holder, self.prefetched, self.recorded = None, False, False

    def record_group(self, session: LedgerSession, group: Sequence[AddAnswer]) -> None:  # type: ignore[override]
        """Record every answer of ``group`` whose cont_sign names no other item, in one bulk
        update per owner."""
        holders = holders_of(session, [a.cont_sign for a in group])
        by_owner: dict[str, list[AddedItem]] = {}
        for answer in group:
            intent = answer.intent
            answer.holder = holders.get((intent.gallery, answer.cont_sign))
            answer.prefetched = True
            if answer.holder is None or answer.holder == intent.item_id:
                by_owner.setdefault(answer.worker.owner, []).append(
                    AddedItem(intent.item_id, answer.cont_sign, intent.brief, intent.tags,
                              answer.now)  # fmt: skip
                )
                answer.recorded = True
        for owner, added in by_owner.items():
            record_adds(session, added, owner)

    def __call__(self, session: LedgerSession) -> Callable[[], None] | None:
        intent, owner = self.intent, self.worker.owner
        if self.recorded:
            return self._unspool
        holder = self.holder
        if not self.prefetched:
            holder = item_for_cont_sign(session, intent.gallery, self.cont_sign)
        elif holder is not None and not holds(session, holder, self.cont_sign):
            holder = None  # an earlier answer of the group let go of it (a delete recorded)
        if holder is None or holder == intent.item_id:
            record_added(
                session, intent.item_id, owner, self.cont_sign, intent.brief, intent.tags,
                self.now,
            )  # fmt: skip
            return self._unspool
        # the ledger still names a gone item by this cont_sign: they are one item now
        merge_items(session, intent.item_id, holder)
        set_have(session, holder, intent.brief, intent.tags, self.now)

        def after() -> None:
            self._unspool()
            self.worker.replan(self.now)

        return after

    def _unspool(self) -> None:
        unspool(self.worker, self.intent)


# -- 216681 -------------------------------------------------------------------------------


def _adopt(worker: Worker, intent: Intent, image: bytes, exists: ItemExistsError) -> None:
    """The gallery holds this image already: take its item over. The item the
    answer names is adopted at once; an answer that names none is followed by a search."""
    ctx = worker.ctx
    gallery: GalleryName = intent.gallery  # type: ignore[assignment]
    hits = None
    if exists.cont_sign is None:
        try:
            page = worker.call(
                gallery,
                "search",
                lambda: ctx.client.search(gallery, image=image, rn=ADOPTION_SEARCH_RN),
            )
        except (ApiError, ValidationError) as error:
            settle_error(worker, [intent], error)
            return
        hits = page.hits
    now = ctx.clock()
    moment = datetime.fromtimestamp(now, UTC)
    merged = False
    retry_at: float | None = None
    with ctx.ledger.transaction() as session:
        decision: AdoptionDecision
        if hits is None:
            assert exists.cont_sign is not None
            when = deleted_at(session, gallery, [exists.cont_sign]).get(exists.cont_sign)
            decision = decide_named_adoption(
                exists.cont_sign, _utc(when), moment, ctx.delete_latency
            )
        else:
            ghosts = deleted_at(session, gallery, [hit.cont_sign for hit in hits])
            content_gone = (
                None
                if intent.content_hash is None
                else content_deleted_at(session, gallery, intent.content_hash)
            )
            decision = decide_adoption(
                hits,
                intent.brief,
                {sign: datetime.fromtimestamp(at, UTC) for sign, at in ghosts.items()},
                moment,
                ctx.delete_latency,
                _utc(content_gone),
            )
        if isinstance(decision, Adopt):
            holder = item_for_cont_sign(session, gallery, decision.cont_sign)
            if holder is not None and holder != intent.item_id:
                merge_items(session, intent.item_id, holder)
                merged = True
            else:
                # brief as the gallery shows it (None: not said), tags unknown: an update follows
                record_added(
                    session, intent.item_id, worker.owner, decision.cont_sign,
                    decision.brief, None, now,
                )  # fmt: skip
        elif isinstance(decision, AddAfter):
            wait_out_latency(
                session,
                intent.item_id,
                worker.owner,
                decision.when.timestamp(),
                "syncd deleted this image lately and the gallery still holds it; "
                f"added again after {decision.when.isoformat(timespec='seconds')}",
            )
        else:
            retry = intent.attempts + 1 < MAX_ADOPTION_ROUNDS
            retry_at = worker.backoff(intent, now) if retry else None
            record_failure(
                session,
                intent.item_id,
                worker.owner,
                exists.code,
                _NO_MATCH,
                now,
                retry_at,
            )
            if not retry:
                ctx.tally.bump("failed")
    if merged:
        worker.replan(now)
    if isinstance(decision, Adopt):
        ctx.tally.bump("adopted")
        worker.tell("add", [intent], "adopted")
        log.debug("%s: the gallery already holds it as %s; adopted", where(intent),
                  decision.cont_sign)  # fmt: skip
    elif isinstance(decision, AddAfter):
        worker.tell("add", [intent], "retrying", _DELETED_LATELY, decision.when.timestamp())
    elif retry_at is not None:
        worker.tell("add", [intent], "retrying", _NO_MATCH, retry_at)
    else:
        worker.tell("add", [intent], "failed", _NO_MATCH)


def _utc(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
