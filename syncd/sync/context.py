"""What every sync worker shares, and the one wrapper every API call goes through.

``SyncContext`` holds the ledger, the client, the shared rate limiter, the account's
pause and stops, and the facts of the config an operation needs; ``Worker`` is one
worker's view of it (its claim owner id) with the call wrapper. The jobs are beside this
module: ``add`` (with 216681 adoption), ``update``, ``delete``, ``failures`` (what an error
means for the intents), ``inflight_audit`` (adds whose answers were lost).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from syncd.api.port import ImageSearch
from syncd.config import LibraryConfig
from syncd.errors import ApiError, BudgetSpentError, RateError
from syncd.gates.backoff import retry_delay
from syncd.gates.budget import DailyBudget
from syncd.gates.pause import AccountState
from syncd.gates.rate import RateLimiter
from syncd.ledger.queue import Intent
from syncd.ledger.schema import Ledger
from syncd.paths.relpath import printable_relpath
from syncd.plan.driver import PlanRules, plan_pending
from syncd.sync.events import OutcomeLog, events_of
from syncd.sync.inflight import AddSpool
from syncd.sync.recorder import Recorder

T = TypeVar("T")


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


@dataclass
class SyncContext:
    """What every worker shares: ledger, client, limiter, account state, config facts."""

    ledger: Ledger
    client: ImageSearch
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
    #: ``api.daily_budget`` (None: no cap)
    budget: DailyBudget | None = None
    #: where each call's outcome is logged and kept for the console
    outcomes: OutcomeLog = field(default_factory=OutcomeLog)

    def depart(self) -> None:
        """The gate every call passes at the wire (the client's ``pace``): its body is
        encoded and signed, its request leaves as this returns. A unit of the daily budget
        first (a ledger transaction: never between the departure and the post), then the
        call's slot of the shared rate, whose departure is recorded as the wait ends.

        Raises BudgetSpentError (the day's budget is spent) or Stopping (the engine shuts
        down); the call is not sent then. A stop that comes while the call waits for its
        slot leaves its unit spent: the budget counts at least every call sent.
        """
        if self.limiter.closed:
            raise Stopping
        if self.budget is not None:
            self.budget.spend()
        if not self.limiter.acquire():
            raise Stopping


@dataclass(frozen=True)
class Worker:
    """One worker: the shared context and the owner id its claims carry."""

    ctx: SyncContext
    owner: str

    def call(self, gallery: str, op: str, send: Callable[[], T]) -> T:
        """One API call: take a free call slot (``api.concurrency``), make it, feed the
        answer back (rate errors slow the shared rate; a success lifts a gallery's stop).

        ``send`` makes the call through ``ctx.client``, whose ``pace`` is ``ctx.depart``:
        the daily budget and the shared rate are met at the wire, once the request is
        built, so building it (an image's base64 and form encoding) never delays a call
        after its slot. Raises Stopping when the engine shuts down before the call went
        out, BudgetSpentError when the day's budget is spent (nothing sent)."""
        ctx = self.ctx
        with ctx.in_flight:
            try:
                result = send()
            except BudgetSpentError:
                raise  # from ctx.depart: nothing was sent
            except ApiError as error:
                ctx.tally.call(op, type(error).__name__)
                if isinstance(error, RateError):
                    ctx.limiter.on_rate_error()
                raise
        now = ctx.clock()
        ctx.tally.call(op, "ok", now)
        ctx.limiter.on_success()
        ctx.account.on_success(gallery)
        return result

    def tell(
        self,
        op: str,
        intents: Sequence[Intent],
        outcome: str,
        reason: str | None = None,
        retry_at: float | None = None,
    ) -> None:
        """Log what a call about ``intents`` came to (``syncd.sync.events``): ``outcome``
        is added, adopted, updated, deleted, failed or retrying (at ``retry_at``, epoch s)."""
        if not intents:
            return
        now = self.ctx.clock()
        retry_in = None if retry_at is None else max(0.0, retry_at - now)
        self.ctx.outcomes.tell(events_of(op, intents, outcome, now, reason, retry_in))

    def backoff(self, intent: Intent, now: float) -> float:
        """When ``intent`` is tried again after its next failure (epoch s, with jitter)."""
        return now + retry_delay(intent.attempts + 1, self.ctx.rng)

    def replan(self, now: float) -> None:
        """Plan the contents a merge queued (the merged item's brief names its oldest copy)."""
        plan_pending(self.ctx.ledger, self.ctx.plan_rules, now)


def one_line(text: str) -> str:
    """``text`` on one line (API messages and OS errors may hold newlines)."""
    return " ".join(text.split())


def where(intent: Intent) -> str:
    """The library and path an intent is about, for log lines (the item when no file)."""
    if intent.library and intent.relpath:
        return f"{intent.library}/{printable_relpath(intent.relpath)}"
    return f"{intent.gallery} item {intent.cont_sign or intent.item_id}"
