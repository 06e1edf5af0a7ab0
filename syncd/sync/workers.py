"""Making the calls of claimed intents and recording what they did (SPEC §2, §3).

Every call goes through the shared rate limiter; every answer is recorded in the ledger
as soon as no other commit is under way (group commit), so a crash loses at most the
answers of the last moments, and repeating those calls is safe: a repeated add answers
216681 (adopted, §2.6), a repeated delete answers nothing or 216680 (success), a repeated
update changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from syncd.api import ImageSearchClient
from syncd.config import LibraryConfig
from syncd.errors import (
    ITEM_EXISTS_CODE,
    ApiError,
    FatalSetupError,
    ItemExistsError,
    ItemMissingError,
    QuotaError,
    RateError,
    TokenError,
    TransientError,
    ValidationError,
)
from syncd.ledger.models import Content, Item, Tombstone, format_tags
from syncd.ledger.queue import (
    AddedItem,
    Intent,
    item_for_cont_sign,
    merge_items,
    record_added,
    record_adds,
    record_deleted,
    record_failure,
    record_updated,
)
from syncd.ledger.schema import Ledger
from syncd.paths import printable_relpath
from syncd.plan.driver import PlanRules, plan_pending
from syncd.protocol import GalleryName
from syncd.scan.prepare import ImageRejected, prepare_image
from syncd.sync.account import AccountState
from syncd.sync.adopt import MAX_ADOPTION_ROUNDS, AddAfter, Adopt, decide_adoption
from syncd.sync.backoff import retry_delay
from syncd.sync.batching import DeleteOutcome, delete_in_batches
from syncd.sync.inflight import AddSpool, SpooledAdd
from syncd.sync.rate import RateLimiter

log = logging.getLogger("syncd.sync")

T = TypeVar("T")

#: hits asked for when searching for the item a 216681 is about (the best few matter)
ADOPTION_SEARCH_RN = 20
#: errors that say the gallery cannot answer now (a later call may work)
_NOT_NOW = (TransientError, RateError, QuotaError, FatalSetupError, TokenError)


class Stopping(Exception):
    """The engine is shutting down: leave the claimed work to the next start."""


@dataclass
class Tally:
    """What this process's workers did (thread-safe through ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: (operation, "ok" or error class name) -> calls
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    added: int = 0
    adopted: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    last_success: float | None = None

    def bump(self, what: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``what`` (added, adopted, updated, deleted, failed)."""
        with self.lock:
            setattr(self, what, getattr(self, what) + n)

    @property
    def settled(self) -> int:
        """Intents done so far: added, adopted, updated, deleted or failed."""
        with self.lock:
            return self.added + self.adopted + self.updated + self.deleted + self.failed

    def call(self, op: str, result: str, when: float | None = None) -> None:
        """Count one call of ``op`` answered with ``result``."""
        with self.lock:
            self.calls[(op, result)] += 1
            if when is not None:
                self.last_success = when


#: one recorded answer: writes into the group's session; may return work for after the commit
Record = Callable[[Session], Callable[[], None] | None]


class Recorder:
    """Commits the answers of calls in groups ("group commit").

    A worker hands its record over and goes on with its next call; whichever worker finds
    no commit under way commits every record handed over meanwhile in one transaction.
    A record lost to a crash only repeats a call, which is safe (module docstring).
    ``on_commit`` runs after each commit (new work may be due: wake the workers).
    """

    def __init__(self, ledger: Ledger, on_commit: Callable[[], None] = lambda: None) -> None:
        self._ledger = ledger
        self.on_commit = on_commit
        self._lock = threading.Lock()
        self._pending: list[Record] = []
        self._committing = False

    def submit(self, record: Record) -> None:
        """Have ``record`` committed soon (now, if no other worker is committing)."""
        with self._lock:
            self._pending.append(record)
            if self._committing:
                return
            self._committing = True
        try:
            while True:
                with self._lock:
                    group, self._pending = self._pending, []
                    if not group:
                        self._committing = False
                        return
                self._commit(group)
        except BaseException:
            with self._lock:
                self._committing = False
            raise

    def _commit(self, group: list[Record]) -> None:
        """Commit ``group`` in one transaction; if that fails, each record on its own (a
        record that still fails is logged and left out: its call is repeated later)."""
        after: list[Callable[[], None]] = []
        answers = [r for r in group if isinstance(r, AddAnswer)]
        try:
            with self._ledger.transaction() as session:
                AddAnswer.record_plain(session, answers)
                after = [a for record in group if (a := record(session)) is not None]
        except Exception:
            log.warning("a group of %d answers failed to commit; committing one by one",
                        len(group), exc_info=True)  # fmt: skip
            after = []
            for answer in answers:
                answer.reset()
            for record in group:
                try:
                    with self._ledger.transaction() as session:
                        action = record(session)
                except Exception:
                    log.exception("an answer could not be recorded; its call will be repeated")
                    continue
                if action is not None:
                    after.append(action)
        for action in after:
            try:
                action()
            except Exception:
                log.exception("work after recording an answer failed")
        self.on_commit()


#: the items named by some cont_signs (built once; Core: no ORM setup per group commit)
_HOLDERS = select(Item.gallery, Item.cont_sign, Item.id).where(
    Item.cont_sign.in_(bindparam("signs", expanding=True))
)


@dataclass
class AddAnswer:
    """A successful add, to be recorded: the item is ``cont_sign`` in its gallery now.

    The answers of one group are recorded together (``record_plain``): one query finds
    whether the ledger already names another item by the same cont_sign, and the plain
    ones (no other) are written in one bulk update. Once recorded, the add's spooled
    image is dropped (after the commit: until then a crash must find it).
    """

    runner: IntentRunner
    intent: Intent
    cont_sign: str
    now: float
    #: the ledger's item named by ``cont_sign`` (None: no other), known after ``prefetch``
    holder: int | None = None
    prefetched: bool = False
    #: written by ``record_plain`` in this group's transaction
    recorded: bool = False

    def reset(self) -> None:
        """Forget what a group transaction that failed did (it is recorded on its own)."""
        self.holder, self.prefetched, self.recorded = None, False, False

    @staticmethod
    def record_plain(session: Session, answers: Sequence[AddAnswer]) -> None:
        """Record every answer whose cont_sign names no other item, in one bulk update."""
        AddAnswer.prefetch(session, answers)
        plain = [a for a in answers if a.holder is None or a.holder == a.intent.item_id]
        by_owner: dict[str, list[AddedItem]] = {}
        for answer in plain:
            intent = answer.intent
            by_owner.setdefault(answer.runner.owner, []).append(
                AddedItem(intent.item_id, answer.cont_sign, intent.brief, intent.tags, answer.now)
            )
            answer.recorded = True
        for owner, added in by_owner.items():
            record_adds(session, added, owner)

    @staticmethod
    def prefetch(session: Session, answers: Sequence[AddAnswer]) -> None:
        """Find, in one query, which of ``answers`` name an item the ledger already has."""
        if not answers:
            return
        session.flush()  # a Core query does not autoflush
        holders = {
            (gallery, sign): item_id
            for gallery, sign, item_id in session.connection().execute(
                _HOLDERS, {"signs": [a.cont_sign for a in answers]}
            )
        }
        for answer in answers:
            answer.holder = holders.get((answer.intent.gallery, answer.cont_sign))
            answer.prefetched = True

    def __call__(self, session: Session) -> Callable[[], None] | None:
        intent, owner = self.intent, self.runner.owner
        if self.recorded:
            return self._unspool
        holder = self.holder
        if not self.prefetched:
            holder = item_for_cont_sign(session, intent.gallery, self.cont_sign)
        elif holder is not None:
            # an earlier answer of the group may have let go of it (a delete recorded)
            row = session.get(Item, holder)
            holder = holder if row is not None and row.cont_sign == self.cont_sign else None
        if holder is None or holder == intent.item_id:
            record_added(
                session, intent.item_id, owner, self.cont_sign, intent.brief, intent.tags,
                self.now,
            )  # fmt: skip
            return self._unspool
        # the ledger still names a gone item by this cont_sign: they are one item now
        merge_items(session, intent.item_id, holder)
        self.runner.set_have(session, holder, intent.brief, intent.tags, self.now)

        def after() -> None:
            self._unspool()
            self.runner.replan(self.now)

        return after

    def _unspool(self) -> None:
        self.runner.unspool(self.intent)


@dataclass
class SyncContext:
    """What every worker shares: ledger, client, limiter, account state, config facts."""

    ledger: Ledger
    client: ImageSearchClient
    limiter: RateLimiter
    account: AccountState
    libraries: Mapping[str, LibraryConfig]
    #: the tag rules and delete_grace the planner runs with
    plan_rules: PlanRules
    #: seconds the gallery keeps a deleted item (and refuses to re-add it)
    delete_latency: float
    recorder: Recorder
    #: at most ``api.concurrency`` calls in flight; more workers than that keep it full
    in_flight: threading.BoundedSemaphore
    clock: Callable[[], float] = time.time
    tally: Tally = field(default_factory=Tally)
    rng: random.Random = field(default_factory=random.Random)
    #: images of adds whose answers are not recorded yet (None: not kept)
    spool: AddSpool | None = None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _where(intent: Intent) -> str:
    """The library and path an intent is about, for log lines (the item when no file)."""
    if intent.library and intent.relpath:
        return f"{intent.library}/{printable_relpath(intent.relpath)}"
    return f"{intent.gallery} item {intent.cont_sign or intent.item_id}"


class IntentRunner:
    """Runs claimed intents for one worker (``owner``) and records their outcome."""

    def __init__(self, ctx: SyncContext, owner: str) -> None:
        self.ctx = ctx
        self.owner = owner

    # -- the call wrapper ---------------------------------------------------------------

    def _call(self, gallery: str, op: str, send: Callable[[], T]) -> T:
        """One API call: wait for a free call slot and the shared rate, make it, feed the
        answer back."""
        with self.ctx.in_flight:
            if not self.ctx.limiter.acquire():
                raise Stopping
            try:
                result = send()
            except ApiError as error:
                self._count_error(op, error)
                raise
        now = self.ctx.clock()
        self.ctx.tally.call(op, "ok", now)
        self.ctx.limiter.on_success()
        self.ctx.account.on_success(gallery)
        return result

    def _count_error(self, op: str, error: ApiError) -> None:
        self.ctx.tally.call(op, type(error).__name__)
        if isinstance(error, RateError):
            self.ctx.limiter.on_rate_error()

    # -- add ------------------------------------------------------------------------------

    def run_add(self, intent: Intent) -> None:
        """Send the item's image from its source file; adopt on 216681."""
        gallery: GalleryName = intent.gallery  # type: ignore[assignment]
        image = self._read_source(intent)
        if image is None:
            return
        self._spool(intent, image)
        try:
            result = self._call(
                gallery,
                "add",
                lambda: self.ctx.client.add(
                    gallery, image=image, brief=intent.brief, tags=intent.tags
                ),
            )
        except Stopping:
            self.unspool(intent)  # not sent
            raise
        except ItemExistsError:
            self._adopt(intent, image)
            self.unspool(intent)  # this add made no item
            return
        except TransientError as error:
            # the add may have been made and only its answer lost: the spool keeps the image
            self.settle_error([intent], error)
            return
        except (ApiError, ValidationError) as error:
            self.unspool(intent)  # refused: nothing was added
            self.settle_error([intent], error)
            return
        self.ctx.recorder.submit(AddAnswer(self, intent, result.cont_sign, self.ctx.clock()))
        self.ctx.tally.bump("added")
        log.debug("%s: added as %s", _where(intent), result.cont_sign)

    def _spool(self, intent: Intent, image: bytes) -> None:
        """Keep the image of an add about to be sent, until its answer is recorded."""
        spool = self.ctx.spool
        if spool is None or intent.content_hash is None:
            return
        spool.keep(
            intent.gallery, intent.content_hash, intent.brief, intent.tags, self.ctx.clock(), image
        )

    def unspool(self, intent: Intent) -> None:
        """The add's answer is recorded, or it made no item: forget its image."""
        if self.ctx.spool is not None and intent.content_hash is not None:
            self.ctx.spool.drop(intent.gallery, intent.content_hash)

    def _read_source(self, intent: Intent) -> bytes | None:
        """The bytes to send for an add, or None after recording why there are none."""
        lib = self.ctx.libraries.get(intent.library or "")
        if lib is None or intent.relpath is None:
            self._local_failure(intent, "no live file of this image to read yet", retry=True)
            return None
        path = lib.root / intent.relpath
        try:
            prepared = prepare_image(path, lib.oversize)
        except ImageRejected as rejected:
            self._local_failure(intent, _one_line(rejected.reason), retry=False)
            return None
        except OSError as exc:
            self._local_failure(intent, f"cannot read the file: {exc.strerror or exc}", retry=True)
            return None
        if (
            not prepared.converted
            and intent.content_hash
            and hashlib.sha256(prepared.data).hexdigest() != intent.content_hash
        ):
            self._local_failure(intent, "the file changed since it was scanned", retry=True)
            return None
        return prepared.data

    # -- 216681 ---------------------------------------------------------------------------

    def _adopt(self, intent: Intent, image: bytes) -> None:
        """The gallery holds this image already: find its item and take it over (§2.6)."""
        gallery: GalleryName = intent.gallery  # type: ignore[assignment]
        try:
            page = self._call(
                gallery,
                "search",
                lambda: self.ctx.client.search(gallery, image=image, rn=ADOPTION_SEARCH_RN),
            )
        except (ApiError, ValidationError) as error:
            self.settle_error([intent], error)
            return
        now = self.ctx.clock()
        with self.ctx.ledger.transaction() as session:
            signs = [hit.cont_sign for hit in page.hits]
            deleted_at = self._tombstones(session, gallery, signs)
            content_deleted = None
            if intent.content_hash is not None:
                content_deleted = session.scalar(
                    select(func.max(Tombstone.deleted_at)).where(
                        Tombstone.gallery == gallery,
                        Tombstone.content_hash == intent.content_hash,
                    )
                )
            decision = decide_adoption(
                page.hits,
                intent.brief,
                deleted_at,
                datetime.fromtimestamp(now, UTC),
                self.ctx.delete_latency,
                None if content_deleted is None else datetime.fromtimestamp(content_deleted, UTC),
            )
            merged = False
            if isinstance(decision, Adopt):
                holder = item_for_cont_sign(session, gallery, decision.cont_sign)
                if holder is not None and holder != intent.item_id:
                    merge_items(session, intent.item_id, holder)
                    merged = True
                else:
                    # brief as the gallery shows it, tags unknown: an update follows
                    record_added(
                        session, intent.item_id, self.owner, decision.cont_sign,
                        decision.brief, None, now,
                    )  # fmt: skip
            elif isinstance(decision, AddAfter):
                when = decision.when.timestamp()
                self._requeue(session, [intent.item_id], when)
                _set_error(
                    session,
                    intent.item_id,
                    ITEM_EXISTS_CODE,
                    "syncd deleted this image lately and the gallery still holds it; "
                    f"added again after {decision.when.isoformat(timespec='seconds')}",
                )
            else:
                retry = intent.attempts + 1 < MAX_ADOPTION_ROUNDS
                record_failure(
                    session,
                    intent.item_id,
                    self.owner,
                    ITEM_EXISTS_CODE,
                    "the gallery says it holds this image but no search hit matches it",
                    now,
                    self._backoff(intent, now) if retry else None,
                )
                if not retry:
                    self.ctx.tally.bump("failed")
        if merged:
            self.replan(now)
        if isinstance(decision, Adopt):
            self.ctx.tally.bump("adopted")
            log.info(
                "%s: the gallery already holds it as %s; adopted",
                _where(intent), decision.cont_sign,
            )  # fmt: skip

    @staticmethod
    def _tombstones(session: Session, gallery: str, signs: Sequence[str]) -> dict[str, datetime]:
        if not signs:
            return {}
        rows = session.execute(
            select(Tombstone.cont_sign, func.max(Tombstone.deleted_at))
            .where(Tombstone.gallery == gallery, Tombstone.cont_sign.in_(signs))
            .group_by(Tombstone.cont_sign)
        )
        return {sign: datetime.fromtimestamp(when, UTC) for sign, when in rows}

    # -- adds whose answer was lost ---------------------------------------------------------

    def audit_spool(self, galleries: Sequence[str]) -> int:
        """Settle the spooled adds of ``galleries`` whose answers were never recorded.

        A spooled content whose item the ledger knows by now is done; one the ledger still
        wants is left to its pending add (a 216681 adopts the item). For the others (the
        file went meanwhile) the gallery is searched with the image, and an item carrying
        the brief that add sent, which the ledger does not know, is deleted. Returns the
        items deleted; an entry whose calls fail stays for the next audit.
        """
        spool = self.ctx.spool
        if spool is None:
            return 0
        removed = 0
        for entry in spool.entries():
            if entry.gallery not in galleries:
                continue
            state = self._spooled_state(entry)
            if state == "wanted":
                continue
            if state == "gone":
                try:
                    removed += self._delete_orphans(entry)
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

    def _spooled_state(self, entry: SpooledAdd) -> str:
        """The ledger's view of a spooled content: "known" (its item has a cont_sign),
        "wanted" (its add is still to come) or "gone" (nothing wants it)."""
        with self.ctx.ledger.transaction() as session:
            row = session.execute(
                select(Item.cont_sign, Item.want_present)
                .join(Content, Content.item_id == Item.id)
                .where(Content.gallery == entry.gallery, Content.content_hash == entry.content_hash)
            ).first()
        if row is None:
            return "gone"
        if row.cont_sign is not None:
            return "known"
        return "wanted" if row.want_present else "gone"

    def _delete_orphans(self, entry: SpooledAdd) -> int:
        """Delete the items a lost add of ``entry`` left, if any; how many there were."""
        gallery: GalleryName = entry.gallery  # type: ignore[assignment]
        page = self._call(
            gallery,
            "search",
            lambda: self.ctx.client.search(gallery, image=entry.data, rn=ADOPTION_SEARCH_RN),
        )
        signs = [hit.cont_sign for hit in page.hits if hit.brief == entry.brief]
        if not signs:
            return 0
        with self.ctx.ledger.transaction() as session:
            known = set(
                session.scalars(
                    select(Item.cont_sign).where(Item.gallery == gallery, Item.cont_sign.in_(signs))
                )
            )
            known.update(self._tombstones(session, gallery, signs))
        orphans = [sign for sign in dict.fromkeys(signs) if sign not in known]
        if not orphans:
            return 0
        with contextlib.suppress(ItemMissingError):  # gone already: as good
            self._call(
                gallery, "delete", lambda: self.ctx.client.delete(gallery, cont_signs=orphans)
            )
        now = self.ctx.clock()
        with self.ctx.ledger.transaction() as session:
            session.execute(
                insert(Tombstone),
                [
                    {"gallery": gallery, "cont_sign": sign,
                     "content_hash": entry.content_hash, "deleted_at": now}
                    for sign in orphans
                ],
            )  # fmt: skip
        self.ctx.tally.bump("deleted", len(orphans))
        log.info("deleted %d gallery item(s) a lost add left behind (%s)", len(orphans),
                 entry.brief)  # fmt: skip
        return len(orphans)

    # -- update ---------------------------------------------------------------------------

    def run_update(self, intent: Intent) -> None:
        """Set the item's brief and tags; an item the gallery lost is added again."""
        gallery: GalleryName = intent.gallery  # type: ignore[assignment]
        assert intent.cont_sign is not None
        cont_sign = intent.cont_sign
        try:
            self._call(
                gallery,
                "update",
                lambda: self.ctx.client.update(
                    gallery, cont_sign=cont_sign, brief=intent.brief, tags=intent.tags
                ),
            )
        except ItemMissingError:
            # gone (or a deleted item still shown): remember it as deleted and add it again
            now = self.ctx.clock()
            self.ctx.recorder.submit(
                lambda session: record_deleted(session, [intent.item_id], self.owner, now)
            )
            log.info("%s: the gallery lost %s; adding it again", _where(intent), cont_sign)
            return
        except (ApiError, ValidationError) as error:
            self.settle_error([intent], error)
            return
        now = self.ctx.clock()
        self.ctx.recorder.submit(
            lambda session: record_updated(
                session, intent.item_id, self.owner, intent.brief, intent.tags, now
            )
        )
        self.ctx.tally.bump("updated")

    # -- delete ---------------------------------------------------------------------------

    def run_deletes(self, gallery: str, intents: Sequence[Intent]) -> None:
        """Delete these items of ``gallery`` in batches of up to 1000 (§2.5)."""
        name: GalleryName = gallery  # type: ignore[assignment]
        by_sign = {i.cont_sign: i for i in intents if i.cont_sign is not None}
        unnamed = [i.item_id for i in intents if i.cont_sign is None]
        if unnamed:
            now = self.ctx.clock()
            self.ctx.recorder.submit(
                lambda session: record_deleted(session, unnamed, self.owner, now)
            )
        settled: set[str] = set()

        def send(batch: Sequence[str]) -> None:
            self._call(name, "delete", lambda: self.ctx.client.delete(name, cont_signs=batch))

        def record(outcome: DeleteOutcome) -> None:
            """Record what the last call settled (the outcome accumulates)."""
            fresh = [s for s in outcome.deleted if s not in settled]
            if fresh:
                ids = [by_sign[s].item_id for s in fresh]
                now = self.ctx.clock()
                self.ctx.recorder.submit(
                    lambda session: record_deleted(session, ids, self.owner, now)
                )
                settled.update(fresh)
                self.ctx.tally.bump("deleted", len(fresh))
            # the signs of one refused batch share its error: settled together
            by_error: dict[int, tuple[Exception, list[Intent]]] = {}
            for sign, error in {**outcome.failed, **outcome.retry}.items():
                if sign not in settled:
                    settled.add(sign)
                    by_error.setdefault(id(error), (error, []))[1].append(by_sign[sign])
            for error, group in by_error.values():
                self.settle_error(group, error)

        outcome = delete_in_batches(list(by_sign), send, on_settled=record)
        if outcome.stopped is not None:
            self.settle_error([by_sign[s] for s in outcome.untried], outcome.stopped)

    # -- failures -------------------------------------------------------------------------

    def settle_error(self, intents: Sequence[Intent], error: Exception) -> None:
        """Record what ``error`` means for these intents (SPEC §3's table)."""
        if not intents:
            return
        now = self.ctx.clock()
        ids = [i.item_id for i in intents]
        gallery = intents[0].gallery
        if isinstance(error, RateError):
            self._submit_requeue(ids, now)
            return
        if isinstance(error, QuotaError):
            # no call goes out while the pause lasts; when it ends, they are due at once
            self.ctx.account.on_quota(error)
            self._submit_requeue(ids, now)
            return
        if isinstance(error, FatalSetupError | TokenError):
            self.ctx.account.on_setup_error(gallery, error)
            self._submit_requeue(ids, now)
            return
        code = error.code if isinstance(error, ApiError) else None
        message = _one_line(error.message if isinstance(error, ApiError) else str(error))
        transient = isinstance(error, TransientError)
        # one draw for the whole batch: its deletes come due together and go out together
        at = self._backoff(max(intents, key=lambda i: i.attempts), now) if transient else None
        retry_at = {i.item_id: at for i in intents}

        def record(session: Session) -> None:
            for item_id, at in retry_at.items():
                record_failure(session, item_id, self.owner, code or 0, message, now, at)
                if code is None:
                    _set_error(session, item_id, None, message)

        self.ctx.recorder.submit(record)
        if transient:
            log.debug("%s for %d item(s) of %s; retrying later", error, len(intents), gallery)
        else:
            self.ctx.tally.bump("failed", len(intents))
            for intent in intents:
                log.warning("%s: %s failed: %s", _where(intent), intent.op, error)

    def _local_failure(self, intent: Intent, message: str, retry: bool) -> None:
        """An add that cannot be sent for a reason of ours (no API code)."""
        now = self.ctx.clock()
        retry_at = self._backoff(intent, now) if retry else None

        def record(session: Session) -> None:
            record_failure(session, intent.item_id, self.owner, 0, message, now, retry_at)
            _set_error(session, intent.item_id, None, message)

        self.ctx.recorder.submit(record)
        if not retry:
            self.ctx.tally.bump("failed")
            log.warning("%s: %s", _where(intent), message)
        else:
            log.info("%s: %s; trying again later", _where(intent), message)

    def _backoff(self, intent: Intent, now: float) -> float:
        return now + retry_delay(intent.attempts + 1, self.ctx.rng)

    def _requeue(self, session: Session, item_ids: Sequence[int], at: float) -> None:
        """Give claimed intents back, due at ``at`` (seconds), without counting an attempt."""
        session.execute(
            update(Item)
            .where(Item.id.in_(item_ids), Item.claim_owner == self.owner)
            .values(claim_owner=None, claimed_at=None, next_attempt_at=at)
        )

    def back_off_unsettled(self, intents: Sequence[Intent], message: str) -> None:
        """Give the intents this worker still holds a backoff and ``message`` (no code)."""
        now = self.ctx.clock()
        with self.ctx.ledger.transaction() as session:
            held = set(
                session.scalars(
                    select(Item.id).where(
                        Item.id.in_([i.item_id for i in intents]), Item.claim_owner == self.owner
                    )
                )
            )
            for intent in intents:
                if intent.item_id in held:
                    retry_at = self._backoff(intent, now)
                    record_failure(session, intent.item_id, self.owner, 0, message, now, retry_at)
                    _set_error(session, intent.item_id, None, message)

    def _submit_requeue(self, item_ids: Sequence[int], at: float) -> None:
        self.ctx.recorder.submit(lambda session: self._requeue(session, item_ids, at))

    def release(self, intents: Sequence[Intent]) -> None:
        """Give back claimed intents untouched (shutdown, or their gallery is closed)."""
        self._submit_requeue([i.item_id for i in intents], self.ctx.clock())

    @staticmethod
    def set_have(
        session: Session, item_id: int, brief: str, tags: tuple[int, ...], now: float
    ) -> None:
        session.execute(
            update(Item)
            .where(Item.id == item_id)
            .values(have_brief=brief, have_tags=format_tags(tags), updated_at=now)
        )

    def replan(self, now: float) -> None:
        """Plan the contents a merge queued (the merged item's brief names its oldest copy)."""
        plan_pending(self.ctx.ledger, self.ctx.plan_rules, now)


def _set_error(session: Session, item_id: int, code: int | None, message: str) -> None:
    session.execute(
        update(Item).where(Item.id == item_id).values(error_code=code, error_message=message)
    )
