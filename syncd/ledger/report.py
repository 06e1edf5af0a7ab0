"""What the ledger can tell a person: the plan of pending intents, per-library status,
the account pause and stopped galleries (stored by ``syncd.ledger.settings``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Text,
    and_,
    func,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from syncd.api.baidu.brief import brief_path
from syncd.ledger.backlog import queued_calls
from syncd.ledger.budget import budget_used
from syncd.ledger.calls import calls_since
from syncd.ledger.conditions import LibraryConditions, conditions_by_library
from syncd.ledger.counters import LIBRARY_KINDS, item_counts, library_counts
from syncd.ledger.models import (
    ITEM_FAILED,
    ITEM_PENDING,
    VERDICT_OK,
    VERDICT_REJECTED,
    VERDICT_SKIPPED,
    Content,
    File,
    Item,
    Library,
)
from syncd.ledger.settings import GALLERY_STOP_PREFIX, PAUSE_KEY, get_setting, settings_with_prefix
from syncd.paths.states import FILE_HELD, FILE_LIVE, FILE_VANISHED
from syncd.pauses import QUOTA_TIMEZONE, AccountPause, GalleryStop, next_quota_reset

# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanEntry:
    """One line of the plan: a library's path and what happens to it, or why it failed."""

    library: str
    path: str
    detail: str = ""


@dataclass
class PlanList:
    """How many of a kind, and the first few."""

    count: int = 0
    first: list[PlanEntry] = field(default_factory=list)


@dataclass
class PlanSummary:
    """The pending intents of the ledger: what a sync would call (``reconcile --dry-run``)."""

    adds: PlanList
    updates: PlanList
    deletes: PlanList
    held_deletes: PlanList
    #: vanished files still inside delete_grace: deleted later unless they come back
    waiting: PlanList
    failures: PlanList


def summarize_plan(session: Session, libraries: Sequence[str] = (), limit: int = 10) -> PlanSummary:
    """The pending work for ``libraries`` (names; all when empty), with the first ``limit``."""
    source = aliased(File)
    source_lib = aliased(Library)

    def items_of(op: str) -> Select[Item, str, str]:
        query = (
            select(Item, source_lib.name, source.relpath)
            .outerjoin(source, source.id == Item.source_file_id)
            .outerjoin(source_lib, source_lib.id == source.library_id)
            .where(Item.op == op, Item.state == ITEM_PENDING)
        )
        if libraries:
            query = query.where(_item_in_libraries(Item, source_lib, libraries, op))
        return query

    counts: dict[str | None, int] = {}
    if not libraries:  # the whole queue: the counts the writes keep
        for (_gallery, state, op), count in item_counts(session).items():
            if state == ITEM_PENDING:
                counts[op] = counts.get(op, 0) + count

    def listed(op: str, line: Any) -> PlanList:
        if not libraries and not counts.get(op):
            # nothing pending: skip the listing, which SQLite runs in id order over every item
            return PlanList(0, [])
        query = items_of(op)
        rows = session.execute(query.order_by(Item.id).limit(limit)).all()
        if libraries:
            count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        else:
            count = counts.get(op, 0)
        return PlanList(int(count), [line(*row) for row in rows])

    adds = listed("add", lambda item, lib, path: PlanEntry(lib or "?", path or "?"))
    updates = listed(
        "update",
        lambda item, lib, path: PlanEntry(
            lib or "?", path or "?", f"was {brief_path(item.have_brief or '') or '?'}"
        ),
    )
    deletes = listed("delete", _delete_entry)
    return PlanSummary(
        adds,
        updates,
        deletes,
        _files_in_state(session, FILE_HELD, libraries, limit),
        _files_in_state(session, FILE_VANISHED, libraries, limit),
        _failures(session, libraries, limit),
    )


def _item_in_libraries(
    item: type[Item], source_lib: Any, libraries: Sequence[str], op: str
) -> ColumnElement[bool]:
    """Whether an item belongs to one of ``libraries``: by its source file, or for a delete
    (its files are gone) by the library its brief named."""
    if op != "delete":
        return source_lib.name.in_(libraries)  # type: ignore[no-any-return]
    prefixes = [
        '{"lib":' + json.dumps(name, ensure_ascii=False, separators=(",", ":")) + ","
        for name in libraries
    ]
    return or_(*(item.have_brief.startswith(p, autoescape=True) for p in prefixes))


def _delete_entry(item: Item, lib: str | None, path: str | None) -> PlanEntry:
    try:
        named = json.loads(item.have_brief or "")
    except ValueError:
        named = {}
    lib_name = named.get("lib") if isinstance(named, dict) else None
    shown = brief_path(item.have_brief or "") or item.cont_sign or "?"
    return PlanEntry(str(lib_name or "?"), shown, f"cont_sign {item.cont_sign}")


def _files_in_state(session: Session, state: str, libraries: Sequence[str], limit: int) -> PlanList:
    query = (
        select(Library.name, File.relpath, File.vanished_at)
        .join(Library, File.library_id == Library.id)
        .where(File.state == state)
    )
    if libraries:
        query = query.where(Library.name.in_(libraries))
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(File.id).limit(limit)).all()
    return PlanList(int(count), [PlanEntry(lib, path, "") for lib, path, _ in rows])


def _failures(session: Session, libraries: Sequence[str], limit: int) -> PlanList:
    """Files not synced for a reason: refused images, unreadable files, failed calls."""
    total = 0
    first: list[PlanEntry] = []
    for query in _failed_files_queries(libraries):
        total += session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.execute(query.order_by(File.id).limit(limit - len(first))).all()
        first += [_failure_entry(*row) for row in rows]
    return PlanList(int(total), first)


_FailedRow = Select[str, str, str | None, str | None, int | None, str | None]


def _failed_files_queries(libraries: Sequence[str]) -> list[_FailedRow]:
    """Selective queries: files refused before any call (by their verdict's index; such
    rows are always live), and the files of the items whose call failed (by the index of
    the items' state: few of them, each joined to its files by content)."""
    refused = (
        select(
            Library.name,
            File.relpath,
            File.verdict,
            File.verdict_reason,
            null().cast(Integer).label("error_code"),
            null().cast(Text).label("error_message"),
        )
        .join(Library, File.library_id == Library.id)
        .where(File.verdict.in_([VERDICT_REJECTED, VERDICT_SKIPPED]))
    )
    # SQLite has no statistics to choose by (syncd runs no ANALYZE): the file terms are kept
    # off their indexes, or its planner walks every live file with an ok verdict
    calls = (
        select(
            Library.name,
            File.relpath,
            File.verdict,
            File.verdict_reason,
            Item.error_code,
            Item.error_message,
        )
        .select_from(Item)
        .join(Content, Content.item_id == Item.id)
        .join(File, File.content_hash == Content.content_hash)
        .join(Library, and_(File.library_id == Library.id, Library.gallery == Content.gallery))
        .where(
            Item.state == ITEM_FAILED,
            _unindexed(File.state) == FILE_LIVE,
            _unindexed(File.verdict) == VERDICT_OK,
        )
    )
    queries: list[_FailedRow] = [refused, calls]
    if libraries:
        return [q.where(Library.name.in_(libraries)) for q in queries]
    return queries


def _unindexed(column: Any) -> Any:
    """``column || ''``: the same value, which SQLite's planner will not look up by index."""
    return column.op("||")("")


def _failure_entry(
    lib: str,
    path: str,
    verdict: str | None,
    reason: str | None,
    code: int | None,
    message: str | None,
) -> PlanEntry:
    if verdict != VERDICT_OK:
        return PlanEntry(lib, path, reason or verdict or "failed")
    return PlanEntry(lib, path, f"error {code}: {message}" if code is not None else message or "")


def failed_files(session: Session, libraries: Sequence[str] = ()) -> list[PlanEntry]:
    """Every live file that is not synced for a reason (``status --failed``)."""
    entries = [
        _failure_entry(*row)
        for query in _failed_files_queries(libraries)
        for row in session.execute(query)
    ]
    return sorted(entries, key=lambda e: (e.library, e.path))


def failed_files_summary(session: Session, libraries: Collection[str], limit: int) -> PlanList:
    """How many live files of ``libraries`` (names) are not synced for a reason, and the
    first ``limit`` of them by library and path, as ``failed_files`` orders them.

    Counted in SQL, and only those ``limit`` rows read: a no-change ``reconcile`` of a
    library of refused files must not build one entry per file (benchmarks/README.md).
    """
    total = 0
    first: list[PlanEntry] = []
    # unnamed queries: naming the libraries makes SQLite read every file row of them
    for query in _failed_files_queries(()):
        rows = query.subquery()
        counts: dict[str, int] = {
            name: n
            for name, n in session.execute(select(rows.c.name, func.count()).group_by(rows.c.name))
        }
        wanted = sum(n for name, n in counts.items() if name in libraries)
        if not wanted:
            continue
        total += wanted
        ordered = query.order_by(Library.name, File.relpath)
        if all(name in libraries for name in counts):
            ordered = ordered.limit(limit)
        taken = 0
        with session.execute(ordered) as result:
            for row in result:
                if taken == limit:
                    break
                if row[0] in libraries:
                    first.append(_failure_entry(*row))
                    taken += 1
    first.sort(key=lambda e: (e.library, e.path))
    return PlanList(total, first[:limit])


# -- status -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LibraryStatus:
    """One library's line of ``syncd status``. Counts are files, except ``items``."""

    name: str
    gallery: str
    files: int
    items: int
    synced: int
    pending: int
    failed: int
    held_deletes: int


@dataclass(frozen=True)
class StatusReport:
    """What ``syncd status`` shows (README, Commands)."""

    libraries: list[LibraryStatus]
    #: the account pause (quota), None when calls are not paused
    paused: dict[str, Any] | None
    #: gallery -> why calls to it stopped (setup error); None when none stopped
    fatal: dict[str, Any] | None
    #: libraries the ledger holds that the config no longer names (their items stay)
    unconfigured: list[LibraryStatus] = field(default_factory=list)
    #: every host that synced with this ledger
    hosts: list[HostStatus] = field(default_factory=list)
    #: the calls the pending intents need, and when they should be done
    queue: QueueStatus | None = None
    #: the daily budget (``api.daily_budget``), None when there is no cap
    budget: BudgetStatus | None = None
    #: library name -> what its last scan knew of its filesystems and could not see, and
    #: why (files kept, not deleted); ``conditions.reasons()`` words them, ``.clear`` says
    #: there is nothing to say. Libraries not scanned yet are absent.
    conditions: dict[str, LibraryConditions] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueStatus:
    """The calls queued (``syncd status``) and when they should be done: at the rate of
    the last minutes when calls flow, else at ``api.qps``."""

    calls: int
    adds: int
    updates: int
    deletes: int
    delete_calls: int
    #: calls per second the estimate assumes, and where it comes from ("recent" or "api.qps")
    rate: float
    rate_from: str
    #: ISO time when the queue should be empty (None: nothing queued, or no rate known)
    done_at: str | None


@dataclass(frozen=True)
class BudgetStatus:
    """The daily budget: calls spent today (quota day, UTC+8) of ``limit``, and when it
    resets (ISO time)."""

    used: int
    limit: int
    resets_at: str


#: minutes of calls the status's "current rate" is measured over
RATE_WINDOW_MINUTES = 5


def queue_status(session: Session, now: float, qps: float) -> QueueStatus:
    """The calls queued for every gallery and an estimate of when they are done."""
    plan = queued_calls(session)
    minute = int(now // 60)
    recent = calls_since(session, minute - RATE_WINDOW_MINUTES) - calls_since(session, minute)
    rate, source = recent / (RATE_WINDOW_MINUTES * 60), "recent"
    if rate <= 0:
        rate, source = qps, "api.qps"
    done_at = None
    if plan.calls and rate > 0:
        done_at = _iso(now + plan.seconds(rate))
    return QueueStatus(
        plan.calls, plan.adds, plan.updates, plan.deletes, plan.delete_calls, rate, source,
        done_at,
    )  # fmt: skip


def budget_status(session: Session, now: float, limit: int) -> BudgetStatus | None:
    """Today's use of a daily budget of ``limit`` calls (None when ``limit`` is 0)."""
    if limit <= 0:
        return None
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.astimezone(QUOTA_TIMEZONE).date().isoformat()
    return BudgetStatus(budget_used(session, day), limit, next_quota_reset(moment).isoformat())


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class HostStatus:
    """One host sharing the ledger: when it was last seen (seconds since the epoch), the
    libraries it owns, and the API calls it sent in the last minute."""

    name: str
    last_seen: float
    libraries: list[str]
    calls_last_minute: int


def host_status(session: Session, now: float) -> list[HostStatus]:
    """Every host of the ledger (and owners of libraries that no host row names), by name."""
    from syncd.ledger.models import CallLog, Host

    seen = {name: float(last) for name, last in session.execute(select(Host.name, Host.last_seen))}
    owned: dict[str, list[str]] = {}
    for name, host in session.execute(
        select(Library.name, Library.host).where(Library.host.is_not(None)).order_by(Library.name)
    ):
        owned.setdefault(host or "", []).append(name)
    # a sliding minute: this minute's calls and the part of the last one still inside it
    minute = int(now // 60)
    share = 1.0 - (now / 60 - minute)
    calls: dict[str, float] = {}
    for host, at, n in session.execute(
        select(CallLog.host, CallLog.minute, CallLog.calls).where(CallLog.minute >= minute - 1)
    ):
        calls[host] = calls.get(host, 0.0) + n * (1.0 if at == minute else share)
    return [
        HostStatus(name, seen.get(name, 0.0), owned.get(name, []), round(calls.get(name, 0.0)))
        for name in sorted(set(seen) | set(owned))
    ]


def ledger_status(
    session: Session,
    libraries: Sequence[tuple[str, str]],
    now: float,
    *,
    qps: float = 0.0,
    daily_budget: int = 0,
) -> StatusReport:
    """Status of the ``(name, gallery)`` libraries (config order) at ``now`` (seconds), and
    of the libraries the ledger still holds that are not among them; the calls queued (an
    estimate at ``qps`` when no call went out lately) and the daily budget when set."""
    counts = library_counts(session)
    held = {
        name: (library_id, gallery)
        for library_id, name, gallery in session.execute(
            select(Library.id, Library.name, Library.gallery).order_by(Library.name)
        )
    }
    lines = [
        _library_status(name, gallery, held.get(name, (None, gallery))[0], counts)
        for name, gallery in libraries
    ]
    named = {name for name, _ in libraries}
    gone = [
        _library_status(name, gallery, library_id, counts)
        for name, (library_id, gallery) in held.items()
        if name not in named
    ]
    kept = [line for line in gone if line.files or line.items or line.pending]
    hosts = host_status(session, now)
    shown = named | {line.name for line in kept}
    conditions = {
        name: found for name, found in conditions_by_library(session).items() if name in shown
    }
    return StatusReport(
        lines,
        _pause(session, now),
        _stops(session),
        kept,
        hosts,
        queue_status(session, now, qps),
        budget_status(session, now, daily_budget),
        conditions,
    )


def empty_status(libraries: Sequence[tuple[str, str]]) -> StatusReport:
    """Status before any ledger exists: every library with nothing yet."""
    return StatusReport([LibraryStatus(n, g, 0, 0, 0, 0, 0, 0) for n, g in libraries], None, None)


def status_document(
    report: StatusReport,
    unsettled_adds: int,
    failures: Sequence[PlanEntry] | None = None,
    *,
    as_of: float | None = None,
) -> dict[str, Any]:
    """The ``syncd status --json`` document (README, Commands), shared by the CLI and the
    console's ``/api/status``; ``failures`` (``--failed``) adds the ``failed`` list.
    ``as_of`` (seconds since the epoch; now when None) is when the ledger was read."""
    import dataclasses
    import time

    data: dict[str, Any] = {
        "as_of": _iso(time.time() if as_of is None else as_of),
        "libraries": [dataclasses.asdict(line) for line in report.libraries],
        "paused": report.paused,
        "fatal": report.fatal,
        "unconfigured": [dataclasses.asdict(line) for line in report.unconfigured],
        "unsettled_adds": unsettled_adds,
        "hosts": [dataclasses.asdict(host) for host in report.hosts],
        "queue": None if report.queue is None else dataclasses.asdict(report.queue),
        "budget": None if report.budget is None else dataclasses.asdict(report.budget),
        "conditions": {
            name: dataclasses.asdict(found) | {"clear": found.clear, "reasons": found.reasons()}
            for name, found in report.conditions.items()
        },
    }
    if failures is not None:  # thousands of entries on a big ledger: no asdict's deep copy
        data["failed"] = [
            {"library": entry.library, "path": entry.path, "detail": entry.detail}
            for entry in failures
        ]
    return data


def _library_status(
    name: str, gallery: str, library_id: int | None, counts: dict[int, dict[str, int]]
) -> LibraryStatus:
    """One library's line (``library_id``: its row, None when the ledger has none), from
    the counts the writes keep (syncd.ledger.counters)."""
    if library_id is None:
        return LibraryStatus(name, gallery, 0, 0, 0, 0, 0, 0)
    kept = counts.get(library_id, {})
    return LibraryStatus(name, gallery, *(kept.get(kind, 0) for kind in LIBRARY_KINDS))


def _pause(session: Session, now: float) -> dict[str, Any] | None:
    text = get_setting(session, PAUSE_KEY)
    if text is None:
        return None
    try:
        pause = AccountPause.from_json(text)
    except (ValueError, KeyError, TypeError):
        return {"reason": "unreadable pause record"}
    if not pause.active(datetime.fromtimestamp(now, UTC)):
        return None
    return pause.as_dict()


def _stops(session: Session) -> dict[str, Any] | None:
    stops: dict[str, Any] = {}
    for key, text in settings_with_prefix(session, GALLERY_STOP_PREFIX).items():
        gallery = key.removeprefix(GALLERY_STOP_PREFIX)
        try:
            stops[gallery] = GalleryStop.from_json(text).as_dict()
        except (ValueError, KeyError, TypeError):
            stops[gallery] = {"gallery": gallery, "reason": "unreadable stop record"}
    return stops or None
