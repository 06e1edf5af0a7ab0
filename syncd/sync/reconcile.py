"""``syncd reconcile`` (without ``--dry-run``), ``syncd retry`` and ``syncd check``: the
one-shot runs of the sync engine and the checks around it (SPEC §6)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from syncd.config import Config, require_credentials
from syncd.errors import (
    ITEM_EXISTS_CODE,
    ApiError,
    ConfigError,
    FatalSetupError,
    SyncdError,
    TokenError,
    TransientError,
)
from syncd.ledger.models import ITEM_FAILED, ITEM_PENDING, VERDICT_OK, Content, File, Item, Library
from syncd.ledger.queue import retry_failed
from syncd.ledger.report import (
    GALLERY_STOP_PREFIX,
    PAUSE_KEY,
    PlanList,
    delete_setting,
    failed_files_summary,
    get_setting,
    settings_with_prefix,
)
from syncd.ledger.schema import Ledger, LedgerError, open_ledger
from syncd.paths import FILE_LIVE, FILE_VANISHED
from syncd.plan.driver import PlanRules, plan_pending
from syncd.protocol import GALLERY_NAMES
from syncd.scan.ahead import WalkAhead
from syncd.scan.scanner import ProgressFactory, ScanResult, scan_libraries, select_libraries
from syncd.sync.account import AccountState
from syncd.sync.inflight import AddSpool
from syncd.sync.lock import SyncLock
from syncd.sync.pause import AccountPause, fatal_advice

if TYPE_CHECKING:
    # the engine and the client (requests, the embedded server) are imported only when a
    # reconcile has something to sync: a no-change run must stay fast (SPEC §8)
    from syncd.sync.engine import SyncReport


#: failed files a reconcile lists by name (``syncd status --failed`` lists them all)
FAILURES_SHOWN = 10


@dataclass
class ReconcileResult:
    """A scan, the sync after it, and the files of those libraries that are not synced."""

    scan: ScanResult
    #: what the sync did; None when the scan left nothing to sync (no gallery was reached)
    sync: SyncReport | None
    #: files of those libraries not synced for a reason: how many, and the first few
    failures: PlanList = field(default_factory=PlanList)
    #: with nothing to sync: the account pause in force (the sync's report says it otherwise)
    pause: AccountPause | None = None

    @property
    def fatal(self) -> str | None:
        """The one line saying what the operator must fix, when calls could not go on."""
        if self.sync is None:
            return None if self.pause is None else self.pause.describe()
        if self.sync.stops:
            return next(iter(self.sync.stops.values())).advice
        if self.sync.pause is not None:
            return self.sync.pause.describe()
        return None


def reconcile(
    config: Config,
    names: Sequence[str] = (),
    *,
    allow_mass_delete: bool = False,
    progress: ProgressFactory | None = None,
    sync_progress: SyncProgressFactory | None = None,
    horizon: float | None = None,
    walks: WalkAhead | None = None,
) -> ReconcileResult:
    """Scan the libraries named (all when none), then sync until nothing is due within
    ``horizon`` seconds (default: the engine's ``IDLE_HORIZON``). Only the galleries those
    libraries feed are called. When the scan leaves nothing to sync (no intent pending for
    them, no vanished file waiting for its grace, no add whose answer was lost) none is
    reached (no embedded server, token or engine) and ``sync`` is None.

    ``progress`` shows the scan; ``sync_progress(due)`` returns what is told how many of
    the ``due`` intents were settled so far (a progress bar on a terminal). ``walks``: the
    walks already started in a child process (``syncd.scan.ahead``).

    Raises ConfigError (unusable [api]), LedgerError, LedgerBusy (another process syncs).
    """
    # said before the scan, even when nothing turns out to be due
    require_credentials(config.api)
    ledger = open_ledger(config.ledger)
    lock = SyncLock(config.ledger.path)
    try:
        lock.acquire()
        selected = select_libraries(config, names)
        galleries = sorted({lib.gallery for lib in selected}) if names else list(GALLERY_NAMES)
        now = time.time()
        scan = scan_libraries(
            ledger,
            config,
            names,
            allow_mass_delete=allow_mass_delete,
            now=now,
            progress=progress,
            walks=walks,
        )
        plan_pending(ledger, PlanRules.of(config), now)
        with ledger.transaction() as session:
            due = due_intents(session, galleries)
            idle = due == 0 and not vanished_waiting(session)
        idle = idle and AddSpool.beside(config.ledger.path).count() == 0
        report: SyncReport | None = None
        pause: AccountPause | None = None
        if idle:
            account = AccountState(ledger, time.time, retry_stops=False)
            account.load()
            pause = account.pause()
            if sync_progress is not None:
                sync_progress(0)(0)
        else:
            report = _sync(ledger, config, galleries, lock, horizon, due, sync_progress)
        wanted = {lib.name for lib in selected}
        with ledger.transaction() as session:
            failures = failed_files_summary(session, wanted, FAILURES_SHOWN)
        return ReconcileResult(scan, report, failures, pause)
    finally:
        lock.release()
        ledger.close()


def _sync(
    ledger: Ledger,
    config: Config,
    galleries: Sequence[str],
    lock: SyncLock,
    horizon: float | None,
    due: int,
    sync_progress: SyncProgressFactory | None,
) -> SyncReport:
    """Run the sync engine against ``config``'s endpoint until nothing is due within
    ``horizon`` seconds (``due``: the intents pending now, for the progress bar)."""
    from syncd.sync.endpoint import open_client
    from syncd.sync.engine import IDLE_HORIZON, SyncEngine

    with open_client(config) as client:
        engine = SyncEngine(ledger, client, config, galleries=galleries, lock=lock)
        tell = sync_progress(due) if sync_progress is not None else None
        return engine.run_until_idle(IDLE_HORIZON if horizon is None else horizon, tell)


#: due intents -> a callable told how many are settled so far
SyncProgressFactory = Callable[[int], Callable[[int], None]]


def due_intents(session: Session, galleries: Sequence[str]) -> int:
    """Pending intents of ``galleries`` (what a sync is about to work on)."""
    count = session.scalar(
        select(func.count())
        .select_from(Item)
        .where(Item.state == ITEM_PENDING, Item.op.is_not(None), Item.gallery.in_(galleries))
    )
    return int(count or 0)


def vanished_waiting(session: Session) -> bool:
    """Whether a vanished file still waits for ``watch.delete_grace`` (its delete is to come)."""
    waiting = select(File.id).where(File.state == FILE_VANISHED, File.content_hash.is_not(None))
    return bool(session.scalar(select(exists(waiting))))


# -- retry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryResult:
    """What ``syncd retry`` queued again: failed items, refused files to read again, and
    whether it lifted a quota pause or gallery stops (calls are tried again at once)."""

    items: int
    files: int
    lifted: list[str] = field(default_factory=list)
    #: items that were waiting on a backoff after an error (a network outage, a 5xx)
    waiting: int = 0


def _relative_under(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators ("" for the root), or None."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    return "" if rel == Path(".") else rel.as_posix()


def _backing_off() -> ColumnElement[bool]:
    """An item waiting on a backoff after errors (not on the deletion latency, §2.6)."""
    return and_(
        Item.state == ITEM_PENDING,
        Item.op.is_not(None),
        Item.attempts > 0,
        or_(Item.error_code.is_(None), Item.error_code != ITEM_EXISTS_CODE),
    )


def retry_failures(
    config: Config, names: Sequence[str] = (), paths: Sequence[Path] = ()
) -> RetryResult:
    """Queue the failed files of the libraries named (all when none), or only those at or
    under ``paths`` (files or folders), for another try.

    Failed items, and items waiting on a backoff after errors (the user fixed the network),
    become due now; files refused by the scan (not an image, unreadable) are read again by
    the next scan. A quota pause and gallery stops are lifted: the next call
    tells whether the cause is gone. Raises ConfigError for a path outside every library.
    """
    libraries = select_libraries(config, names)
    wanted: dict[str, list[str]] = {}
    for raw in paths:
        absolute = Path(os.path.abspath(raw))
        hits = [
            (lib.name, rel)
            for lib in libraries
            if (rel := _relative_under(absolute, Path(os.path.abspath(lib.root)))) is not None
        ]
        if not hits:
            raise ConfigError(f"{raw}: not inside the root of any library selected")
        for name, rel in hits:
            wanted.setdefault(name, []).append(rel)
    chosen = [lib.name for lib in libraries if not paths or lib.name in wanted]
    ledger = open_ledger(config.ledger, create=False)
    try:
        with ledger.transaction() as session:
            rows = session.execute(
                select(
                    Library.name,
                    File.id,
                    File.relpath,
                    File.verdict,
                    Item.id,
                    Item.state,
                    _backing_off(),
                )
                .join(Library, File.library_id == Library.id)
                .outerjoin(
                    Content,
                    and_(
                        Content.gallery == Library.gallery,
                        Content.content_hash == File.content_hash,
                    ),
                )
                .outerjoin(Item, Item.id == Content.item_id)
                .where(Library.name.in_(chosen), File.state == FILE_LIVE)
            )
            items: set[int] = set()
            waiting: set[int] = set()
            files: list[int] = []
            for lib, file_id, relpath, verdict, item_id, state, backing_off in rows:
                prefixes = wanted.get(lib)
                if prefixes is not None and not any(
                    p == "" or relpath == p or relpath.startswith(p + "/") for p in prefixes
                ):
                    continue
                if verdict != VERDICT_OK:
                    files.append(file_id)
                elif item_id is not None and state == ITEM_FAILED:
                    items.add(item_id)
                elif item_id is not None and backing_off:
                    waiting.add(item_id)
            if not paths:
                # deletes of vanished files have no live file: take the galleries' own
                galleries = {lib.gallery for lib in libraries}
                waiting.update(
                    session.scalars(
                        select(Item.id).where(Item.gallery.in_(galleries), _backing_off())
                    )
                )
            retry_failed(session, sorted(items | waiting), time.time())
            if files:
                # a signature no stat matches: the next scan reads and judges them again
                session.execute(update(File).where(File.id.in_(files)).values(mtime_ns=-1))
            lifted = []
            if get_setting(session, PAUSE_KEY) is not None:
                delete_setting(session, PAUSE_KEY)
                lifted.append("the quota pause")
            for key in settings_with_prefix(session, GALLERY_STOP_PREFIX):
                delete_setting(session, key)
                lifted.append(f"the stop of gallery {key.removeprefix(GALLERY_STOP_PREFIX)}")
        return RetryResult(len(items), len(files), lifted, len(waiting))
    finally:
        ledger.close()


# -- check ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckLine:
    """One check and how it went; ``ok`` False says what is wrong."""

    what: str
    ok: bool
    detail: str


def check_setup(config: Config) -> tuple[list[CheckLine], int]:
    """Reach the endpoint, obtain a token, probe each gallery the libraries feed, open the
    ledger. Returns the lines and the exit code (0 ok, 2 config or ledger, 3 API)."""
    from syncd.sync.endpoint import EMBEDDED, open_client

    lines: list[CheckLine] = []
    code = 0
    endpoint = config.api.endpoint
    shown = "the embedded local gallery" if endpoint == EMBEDDED else endpoint
    try:
        with open_client(config) as client:
            lines.append(CheckLine("endpoint", True, shown))
            for gallery in sorted({lib.gallery for lib in config.libraries}):
                try:
                    client.check(gallery)
                except ApiError as exc:
                    lines.append(CheckLine(f"gallery {gallery}", False, _problem(gallery, exc)))
                    code = 3
                else:
                    lines.append(CheckLine(f"gallery {gallery}", True, "credentials accepted"))
    except ConfigError as exc:
        lines.append(CheckLine("api", False, str(exc)))
        code = 2
    except SyncdError as exc:
        lines.append(CheckLine(f"endpoint {shown}", False, str(exc)))
        code = 3
    path = config.ledger.path
    if config.ledger.exists():
        try:
            ledger = open_ledger(config.ledger, create=False)
            lines.append(CheckLine("ledger", True, ledger.where))
            ledger.close()
        except LedgerError as exc:
            lines.append(CheckLine("ledger", False, str(exc)))
            code = code or 2
    else:
        folder = next((p for p in path.parents if p.exists()), None)
        if folder is not None and os.access(folder, os.W_OK):
            lines.append(CheckLine("ledger", True, f"{path} (created on the first run)"))
        else:
            lines.append(CheckLine("ledger", False, f"{path}: its folder cannot be created"))
            code = code or 2
    return lines, code


def _problem(gallery: str, error: ApiError) -> str:
    """What a failed probe of ``gallery`` means, in one line."""
    if isinstance(error, FatalSetupError | TokenError):
        return fatal_advice(gallery, error)
    if isinstance(error, TransientError):
        return f"cannot reach the gallery API: {error}"
    return str(error)
