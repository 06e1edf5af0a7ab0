"""The sync engine: workers turning the ledger's intents into calls, ``api.concurrency`` at once.

Workers claim due intents from the ledger (the queue), make the calls through the shared
rate limiter and record each answer (``syncd.sync.add``, ``update``, ``delete``). Deletes of a gallery are
claimed a thousand at a time so they go out in as few calls as the API allows. An idle
worker waits on a condition variable until the next intent is due or ``wake`` says new
work is in the ledger; nothing polls in a loop.

Two ways to run it: ``start``/``stop`` for the service (workers run until stopped, a
stopped gallery is retried every few minutes), and ``run_until_idle`` for ``reconcile``
(workers stop once nothing is due within ``horizon`` seconds).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from syncd.api.baidu.galleries import GALLERY_NAMES
from syncd.api.baidu.limits import MAX_DELETE_BATCH
from syncd.api.port import ImageSearch
from syncd.config import Config
from syncd.errors import SyncdError
from syncd.gates.budget import DailyBudget
from syncd.gates.heartbeat import Heartbeat
from syncd.gates.host_lock import SyncLock
from syncd.gates.pause import AccountState
from syncd.gates.rate import RateLimiter
from syncd.gates.shared_rate import SharedRateLimiter
from syncd.ledger.backlog import backlog, pending_intents, vanished_waiting
from syncd.ledger.hosts import join_ledger
from syncd.ledger.models import LANE_BULK, LANE_LIVE
from syncd.ledger.queue import (
    Intent,
    claim_due_intents,
    copies_elsewhere,
    next_due_at,
    next_lease_end,
    owner_prefix,
    release_claims,
    release_host_claims,
)
from syncd.ledger.schema import Ledger, LedgerUnavailable
from syncd.pauses import AccountPause, GalleryStop
from syncd.plan.driver import PlanRules, plan_pending
from syncd.sync.add import run_add
from syncd.sync.context import Stopping, SyncContext, Tally, Worker
from syncd.sync.delete import run_deletes
from syncd.sync.events import OutcomeLog
from syncd.sync.failures import back_off_unsettled, release
from syncd.sync.inflight import AddSpool
from syncd.sync.inflight_audit import audit_spool
from syncd.sync.recorder import Recorder
from syncd.sync.update import run_update

log = logging.getLogger("syncd.sync")

#: reconcile waits for work due within this many seconds; later work is reported
IDLE_HORIZON = 60.0
#: seconds an idle worker waits at most before looking at the ledger again
MAX_IDLE_WAIT = 30.0
#: seconds a worker waits when work is due but another worker holds it
CONTENDED_WAIT = 0.05
#: seconds a host whose claims come back short asks the kept counts before it claims (then
#: one claim walks the queue without asking them)
UNGATED_CLAIM_EVERY = 300.0
#: seconds between two progress reports of a one-shot run
PROGRESS_EVERY = 1.0
#: seconds a service worker rests after an internal error (a ledger locked for long)
ERROR_PAUSE = 5.0
#: workers beyond api.concurrency (see _spawn)
SPARE_WORKERS = 2
#: intents claimed from the ledger at a time, per worker (one claim feeds every worker)
CLAIM_PER_WORKER = 8
#: seconds between two audits of lost adds by the service (also one at each start)
AUDIT_EVERY = 600.0
#: seconds at most a worker waits before it tries a ledger that went away again
LEDGER_RETRY_MAX = 30.0
#: seconds of calls at api.qps one claim takes at most: what a fresh change may wait behind
CLAIM_SECONDS = 0.5


def claim_size(qps: float, concurrency: int) -> int:
    """Intents claimed at a time: enough to keep ``concurrency`` calls in flight, at most
    CLAIM_PER_WORKER per worker, and no more than CLAIM_SECONDS of calls at ``qps``, so a
    fresh change never waits behind a long claimed batch (docs/rules.md, Fresh changes
    first)."""
    workers = max(1, concurrency)
    return max(workers, min(CLAIM_PER_WORKER * workers, int(qps * CLAIM_SECONDS)))


def bulk_share(size: int) -> int:
    """Of a claim of ``size``, what the bulk lane keeps when the live lane is busy: a
    quarter, at least one (none of a claim of one: the next claim has its turn)."""
    return max(1, size // 4) if size > 1 else 0


@dataclass(frozen=True)
class EngineStats:
    """The engine's numbers for /metrics."""

    #: (operation, "ok" or error class name) -> calls since start
    calls: dict[tuple[str, str], int]
    #: calls per second the shared limiter allows now
    rate: float
    #: seconds since the epoch of the last successful call
    last_success: float | None


@dataclass
class SyncReport:
    """What one ``run_until_idle`` did and what it left."""

    #: (operation, "ok" or error class name) -> calls made
    calls: dict[tuple[str, str], int] = field(default_factory=dict)
    added: int = 0
    adopted: int = 0
    updated: int = 0
    deleted: int = 0
    #: intents that became failed (bad image, bad request, …)
    failed: int = 0
    #: intents left pending (backoff over the horizon, deletion latency, stopped gallery)
    pending: int = 0
    #: of those, the ones whose last call failed and that wait on a backoff (not synced yet)
    retrying: int = 0
    #: seconds since the epoch when the first of them is due
    next_due: float | None = None
    #: vanished files whose delete_grace ends after the horizon, and when the first does
    vanished_waiting: int = 0
    vanished_due: float | None = None
    #: adds whose answers were lost and that could not be settled yet (syncd.sync.inflight)
    lost_adds: int = 0
    pause: AccountPause | None = None
    stops: dict[str, GalleryStop] = field(default_factory=dict)


@dataclass(frozen=True)
class _Work:
    gallery: str
    intents: list[Intent]
    deletes: bool


class SyncEngine:
    """Workers that sync the ledger's intents to the gallery API of ``client``.

    ``galleries``: the galleries whose intents are served (all by default). ``limiter``:
    the shared rate limiter (one at ``api.qps`` by default). ``clock``: seconds since the
    epoch.
    """

    def __init__(
        self,
        ledger: Ledger,
        client: ImageSearch,
        config: Config,
        *,
        galleries: Sequence[str] = GALLERY_NAMES,
        limiter: RateLimiter | None = None,
        lock: SyncLock | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._config = config
        self._galleries = list(galleries)
        self._clock = clock
        self._lock = lock if lock is not None else SyncLock(ledger.path, config.host)
        self._host = config.host.name
        self._owner = f"{owner_prefix(self._host)}{os.getpid()}:{secrets.token_hex(4)}"
        self._heartbeat: Heartbeat | None = None
        self._ctx = SyncContext(
            ledger=ledger,
            client=client,
            # the account's rate (by the hour with api.qps_schedule), shared with every host
            limiter=limiter if limiter is not None else SharedRateLimiter(
                ledger, config.api.qps, schedule=config.api.rates, host=config.host.name
            ),
            account=AccountState(ledger, clock),
            libraries={lib.name: lib for lib in config.libraries},
            plan_rules=PlanRules.of(config),
            delete_latency=config.safety.delete_latency,
            recorder=Recorder(ledger),
            in_flight=threading.BoundedSemaphore(max(1, config.api.concurrency)),
            clock=clock,
            tally=Tally(),
            spool=AddSpool.for_host(ledger.path, config.host),
            budget=(
                DailyBudget(ledger, config.api.daily_budget, clock)
                if config.api.daily_budget
                else None
            ),
            outcomes=OutcomeLog(clock, self._queued),
        )
        self._ctx.recorder.on_commit = self.wake
        # every call waits for the daily budget and the shared rate at the wire, its request
        # built (a repeat after a renewed token too): its departure is when it leaves
        client.pace = self._ctx.depart
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._done = False
        self._crashed = False
        self._busy = 0
        #: bumped whenever work finished or was announced: idle workers look again
        self._generation = 0
        #: the last idle look at the ledger: at which generation it found nothing to claim,
        #: and until when (time.monotonic) it said to wait; the other idle workers wait with it
        #: instead of asking the ledger the same questions (on a ledger several hosts
        #: share, a host with nothing to send walks the others' whole backlog to know it)
        self._idle_generation = -1
        self._idle_until = 0.0
        self._looking = False
        #: until when (time.monotonic) claims ask the kept counts first: set by a claim that
        #: walked the queue and came back short, cleared by a full one (see _claim)
        self._gated_until = 0.0
        self._idle_exit = False
        self._horizon = IDLE_HORIZON
        self._replanning = threading.Lock()
        #: work this process claimed in the ledger and no worker has taken yet
        self._claimed: deque[_Work] = deque()
        self._claiming = threading.Lock()
        self._auditing = threading.Lock()
        self._last_audit = time.monotonic()

    # -- lifecycle ----------------------------------------------------------------------

    def _begin(self, retry_stops: bool) -> None:
        """Take this host's sync lock, join the ledger, clean up after a process
        of this host that died, and start the heartbeat."""
        self._lock.acquire()
        try:
            join_ledger(self._ledger, self._config)
            self._ctx.account = AccountState(self._ledger, self._clock, retry_stops=retry_stops)
            self._ctx.account.load()
            with self._ledger.transaction() as session:
                # we hold the host's sync lock: its other claims were left by a dead process
                release_host_claims(session, self._host)
            self._heartbeat = Heartbeat(
                self._ledger, self._host, self._owner, self._ctx.account, self._ctx.tally
            )
            self._heartbeat.start()
        except BaseException:
            self._lock.release()
            raise

    def _end_heartbeat(self) -> None:
        """Stop the heartbeat (after the workers: their leases are renewed until then)."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None

    def _audit_spool(self) -> None:
        """Settle adds whose answers were lost (a crash, a timeout): ``syncd.sync.inflight``."""
        if not self._auditing.acquire(blocking=False):
            return
        try:
            self._last_audit = time.monotonic()
            galleries = self._ctx.account.open_galleries(self._galleries)
            if galleries:
                audit_spool(Worker(self._ctx, self._owner), galleries)
        except Stopping:
            pass
        except Exception:
            log.exception("looking for items of lost adds failed; trying again later")
        finally:
            self._auditing.release()

    def _spawn(self) -> None:
        # a few workers more than calls in flight: they read images and record answers
        # while the others wait for the gallery, so api.concurrency calls stay in flight
        count = max(1, self._config.api.concurrency) + SPARE_WORKERS
        self._threads = [
            threading.Thread(
                target=self._worker_main, args=(n,), name=f"syncd-sync-{n}", daemon=True
            )  # fmt: skip
            for n in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def start(self) -> None:
        """Start the workers for the service; raises LedgerBusy if another process syncs."""
        self._begin(retry_stops=True)
        self._audit_spool()
        self._spawn()
        calls = max(1, self._config.api.concurrency)
        log.info(
            "sync started: up to %d %s at once (api.concurrency) by %d workers (%d spare "
            "ones read images and record answers meanwhile), at most %.1f calls/s",
            calls, "call" if calls == 1 else "calls", len(self._threads),
            len(self._threads) - calls, self._ctx.limiter.ceiling,
        )  # fmt: skip

    def stop(self, timeout: float | None = None) -> None:
        """Stop the workers: calls in flight get ``timeout`` seconds to end, then the
        claims still held are given back and the sync lock released."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._ctx.limiter.close()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        self._end_heartbeat()
        self._ctx.outcomes.close()
        if not any(thread.is_alive() for thread in self._threads):
            self._release_own_claims()
        self._lock.release()

    def run_until_idle(
        self,
        horizon: float = IDLE_HORIZON,
        progress: Callable[[int], None] | None = None,
    ) -> SyncReport:
        """Sync until nothing is due within ``horizon`` seconds (``reconcile``); the report
        says what was done and what is left. ``progress`` is told every second how many
        intents were settled so far. Raises LedgerBusy if another process syncs."""
        self._idle_exit = True
        self._horizon = horizon
        self._begin(retry_stops=False)
        try:
            self._audit_spool()
            self._spawn()
            for thread in self._threads:
                while thread.is_alive():
                    thread.join(PROGRESS_EVERY if progress is not None else None)
                    if progress is not None:
                        progress(self._ctx.tally.settled)
            if self._crashed:
                raise SyncdError("a sync worker stopped on an internal error (see the log)")
            return self._report()
        finally:
            self._ctx.limiter.close()
            self._end_heartbeat()
            self._ctx.outcomes.close()
            self._release_own_claims()
            self._lock.release()

    def wake(self) -> None:
        """New intents are in the ledger: idle workers look now."""
        with self._cv:
            self._generation += 1
            self._cv.notify_all()

    def healthy(self) -> bool:
        """True while every worker thread runs."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def stats(self) -> EngineStats:
        """Calls by operation and result, the current rate, the last success."""
        tally = self._ctx.tally
        with tally.lock:
            calls = dict(tally.calls)
            last = tally.last_success
        return EngineStats(calls, self._ctx.limiter.rate, last)

    # -- the workers --------------------------------------------------------------------

    def _worker_main(self, index: int) -> None:
        runner = Worker(self._ctx, self._owner)
        away, last_away = 0, 0.0
        while True:
            try:
                self._worker_loop(runner)
                return
            except LedgerUnavailable as exc:
                # the database went away: no call without it; try again later
                now = time.monotonic()
                away = 1 if now - last_away > 2 * LEDGER_RETRY_MAX else away + 1
                last_away = now
                if away == 1 and index == 0:
                    log.warning("sync workers wait for the ledger: %s", exc)
                if not self._rest_after_error(min(LEDGER_RETRY_MAX, 2.0**away)):
                    return
            except Exception:
                log.exception("sync worker %d: internal error", index)
                if not self._rest_after_error(ERROR_PAUSE):
                    return

    def _rest_after_error(self, seconds: float) -> bool:
        """After an error a worker could not handle: the service's worker rests ``seconds``
        and goes on (True); a one-shot run reports it and its workers end (False)."""
        with self._cv:
            if self._idle_exit or self._stopping:
                self._crashed = self._idle_exit
                self._done = self._idle_exit
                self._cv.notify_all()
                return False
            self._cv.wait(seconds)
            return True

    def _worker_loop(self, runner: Worker) -> None:
        while True:
            with self._cv:
                if self._stopping or self._done:
                    return
                generation = self._generation
                idle_look = self._idle_generation == generation
                if idle_look:
                    wait = self._idle_until - time.monotonic()
                    if wait > 0 or self._looking:
                        # another worker looked at this generation and found nothing to
                        # claim (or looks again now): wait with it
                        self._cv.wait(wait if wait > 0 else MAX_IDLE_WAIT)
                        continue
                    self._looking = True  # its wait is over: this worker looks again
            try:
                if not self._look(runner, generation):
                    return
            finally:
                if idle_look:
                    with self._cv:
                        self._looking = False
                        self._cv.notify_all()

    def _look(self, runner: Worker, generation: int) -> bool:
        """Take the next work and run it, or, when there is none, wait until the ledger says
        some is due (or until something changes); False when the worker is to end."""
        galleries = self._ctx.account.open_galleries(self._galleries)
        work = self._next_work(runner, galleries)
        if work is not None:
            self._run(runner, work)
            return True
        if not self._idle_exit:
            self._ctx.account.refresh()
            if time.monotonic() - self._last_audit > AUDIT_EVERY:
                self._audit_spool()
        grace_end = self._expire_grace() if self._idle_exit else None
        claim_time = self._clock()
        next_due = self._next_due(galleries)
        with self._cv:
            if self._stopping or self._done:
                return False
            if self._generation != generation:
                return True
            now = self._clock()
            moments = [t for t in (next_due, grace_end, self._ctx.account.next_change())
                       if t is not None]  # fmt: skip
            wake_at = min(moments) if moments else None
            if (
                self._idle_exit
                and self._busy == 0
                and (
                    self._ctx.account.pause() is not None
                    or wake_at is None
                    or wake_at > now + self._horizon
                )
            ):
                self._done = True
                self._cv.notify_all()
                return False
            if wake_at is None:
                timeout = MAX_IDLE_WAIT
            elif next_due is not None and next_due <= claim_time:
                timeout = CONTENDED_WAIT  # due, but held by a busy worker
            else:
                timeout = min(MAX_IDLE_WAIT, max(CONTENDED_WAIT, wake_at - now))
            # the other idle workers wait as long, and only one looks again then
            self._idle_generation = generation
            self._idle_until = time.monotonic() + timeout
            self._cv.wait(timeout)
            return True

    def _next_work(self, runner: Worker, galleries: Sequence[str]) -> _Work | None:
        """The next claimed work of this process; claims a batch from the ledger when none
        is left. Work of a gallery that may not be called now goes back to the ledger."""
        with self._claiming:
            while self._claimed:
                work = self._claimed.popleft()
                if work.gallery in galleries:
                    return work
                release(runner, work.intents)
            if not galleries:
                return None
            batch = self._claim(galleries)
            if not batch:
                return None
            self._claimed.extend(batch[1:])
        with self._cv:
            # work was found: the workers waiting on an idle look take the rest
            self._idle_generation = -1
            if len(batch) > 1:
                self._cv.notify_all()
        return batch[0]

    def _run(self, runner: Worker, work: _Work) -> None:
        with self._cv:
            self._busy += 1
        try:
            if work.deletes:
                run_deletes(runner, work.gallery, work.intents)
            else:
                for intent in work.intents:
                    if intent.op == "add":
                        run_add(runner, intent)
                    else:
                        run_update(runner, intent)
        except Stopping:
            release(runner, work.intents)
        except Exception:
            # one bad intent (or a ledger hiccup) must not end the service: back off and go on
            count = len(work.intents)
            log.exception("sync worker: internal error on %d %s", count,
                          "intent" if count == 1 else "intents")  # fmt: skip
            back_off_unsettled(runner, work.intents, "internal error (see the log)")
        finally:
            with self._cv:
                self._busy -= 1
                self._generation += 1
                self._cv.notify_all()

    def _claim(self, galleries: Sequence[str]) -> list[_Work]:
        """Claim a batch of due intents: each add or update is one work, the deletes of a
        gallery (topped up to 1000) are one."""
        now = self._clock()
        size = claim_size(self._config.api.qps, self._config.api.concurrency)
        # once claims come back short, the kept counts tell a host with nothing to send so
        # without a walk of the queue (see claim_due_intents); every few minutes it walks
        # anyway. A host with work claims without asking them: one statement less.
        gated = time.monotonic() < self._gated_until
        with self._ledger.transaction() as session:
            # adds only of copies this host holds, when other hosts hold some (the claim
            # itself asks whether they do)
            host = self._host
            # fresh changes first, but the bulk lane keeps a share of every claim
            intents = claim_due_intents(
                session, self._owner, now, limit=max(1, size - bulk_share(size)),
                galleries=galleries, host=host, lane=LANE_LIVE, gated=gated,
            )  # fmt: skip
            if len(intents) < size:
                intents += claim_due_intents(
                    session, self._owner, now, limit=size - len(intents),
                    galleries=galleries, host=host, lane=LANE_BULK, gated=gated,
                )  # fmt: skip
            if len(intents) >= size:
                self._gated_until = 0.0
            elif not gated:
                self._gated_until = time.monotonic() + UNGATED_CLAIM_EVERY
            deletes: dict[str, list[Intent]] = {}
            for intent in intents:
                if intent.op == "delete":
                    deletes.setdefault(intent.gallery, []).append(intent)
            for gallery, group in deletes.items():
                if len(group) < MAX_DELETE_BATCH:
                    group += claim_due_intents(
                        session, self._owner, now, limit=MAX_DELETE_BATCH - len(group),
                        ops=("delete",), galleries=[gallery], host=host, gated=gated,
                    )  # fmt: skip
        work = [_Work(g, group, deletes=True) for g, group in deletes.items()]
        work += [_Work(i.gallery, [i], deletes=False) for i in intents if i.op != "delete"]
        return work

    def _queued(self, gallery: str) -> int:
        """Intents of ``gallery`` still to be sent (for the log's burst summaries)."""
        with self._ledger.transaction() as session:
            return pending_intents(session, [gallery])

    def _next_due(self, galleries: Sequence[str]) -> float | None:
        """When the next unclaimed, unblocked intent of ``galleries`` is due (epoch s)."""
        if not galleries:
            return None
        with self._ledger.transaction() as session:
            elsewhere = copies_elsewhere(session, self._host)
            host = self._host if elsewhere else None
            due = next_due_at(session, galleries, host)
            if elsewhere and not self._idle_exit:
                # the service wakes when another host's lease runs out: it may have died
                lease_end = next_lease_end(session, galleries, self._host)
                if lease_end is not None and lease_end > self._clock():
                    due = lease_end if due is None else min(due, lease_end)
            return due

    def _expire_grace(self) -> float | None:
        """Plan the deletes of vanished files whose delete_grace is over; when the next
        grace ends (epoch s). ``reconcile`` waits for graces that end within its horizon."""
        grace = self._config.watch.delete_grace
        with self._ledger.transaction() as session:
            first = vanished_waiting(session).first_at
        if first is None:
            return None
        ends = first + grace
        if ends > self._clock() or not self._replanning.acquire(blocking=False):
            return ends
        try:
            plan_pending(self._ledger, self._ctx.plan_rules, self._clock())
        finally:
            self._replanning.release()
        with self._cv:
            self._generation += 1
            self._cv.notify_all()
        return None

    def _release_own_claims(self) -> None:
        self._claimed.clear()
        try:
            with self._ledger.transaction() as session:
                release_claims(session, self._owner)
        except LedgerUnavailable as exc:
            # the leases run out by themselves; the next start of this host releases them
            log.warning("could not give back this process's claims: %s", exc)

    # -- the report ---------------------------------------------------------------------

    def _report(self) -> SyncReport:
        tally = self._ctx.tally
        with tally.lock:
            report = SyncReport(
                calls=dict(tally.calls),
                added=tally.added,
                adopted=tally.adopted,
                updated=tally.updated,
                deleted=tally.deleted,
                failed=tally.failed,
            )
        grace = self._config.watch.delete_grace
        with self._ledger.transaction() as session:
            left = backlog(session, self._galleries)
            vanished = vanished_waiting(session)
        report.pending = left.pending
        report.retrying = left.retrying
        report.next_due = left.next_due
        report.vanished_waiting = vanished.files
        report.vanished_due = None if vanished.first_at is None else vanished.first_at + grace
        if self._ctx.spool is not None:
            report.lost_adds = self._ctx.spool.count()
        report.pause = self._ctx.account.pause()
        report.stops = self._ctx.account.stops()
        return report


def utc_text(seconds: float) -> str:
    """``seconds`` since the epoch as local ISO time for people."""
    return datetime.fromtimestamp(seconds, UTC).astimezone().isoformat(timespec="seconds")
