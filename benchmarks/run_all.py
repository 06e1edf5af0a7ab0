"""Run every ``benchmarks/bench_*.py`` as its own process and summarise their results.

Run: ``.venv/bin/python benchmarks/run_all.py [--quick] [--only NAME]... [--timeout SECONDS]``.

Each benchmark runs in turn (never two at once: they measure time), with ``--quick``
passed through when given and the script accepts it. Its output is echoed as it comes;
its ``BENCH {json}`` lines (see ``_common.py``) are collected. A benchmark that fails,
runs past ``--timeout`` or prints no result is reported as such and the others still run.
The summary table lists every result: figure, target, ratio (>= 1 meets the target) and
verdict. Exit status 0 when every benchmark ran and met every target, else 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from _common import REPO_ROOT, Result, bench_parser, print_table, result_rows, timed, wait_peak_rss

HERE: Final = Path(__file__).resolve().parent
#: lines of a failed benchmark's output repeated under the summary
TAIL_LINES: Final = 15


@dataclass
class BenchRun:
    """What one benchmark process did."""

    name: str
    #: "ok", "exit N", "timeout after N s", "no result" or "not started: reason"
    status: str = "ok"
    seconds: float = 0.0
    #: peak resident memory of the benchmark process itself (not of its children), bytes
    peak_rss: int = 0
    quick: bool = False
    results: list[Result] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Ran cleanly and met every target."""
        return self.status == "ok" and all(result.ok for result in self.results)


def discover(only: list[str]) -> list[Path]:
    """The benchmark scripts beside this one, by name, filtered by ``only`` substrings."""
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if any(word in s.stem for word in only)]
    return scripts


def accepts_quick(script: Path) -> bool:
    """Whether the script takes ``--quick`` (it names the flag or uses bench_parser)."""
    try:
        source = script.read_text(encoding="utf-8")
        return "--quick" in source or "bench_parser(" in source
    except OSError:
        return False


def run_bench(script: Path, quick: bool, timeout: float) -> BenchRun:
    """Run ``script`` to its end or ``timeout`` seconds, echoing and collecting its output."""
    run = BenchRun(script.stem, quick=quick and accepts_quick(script))
    command = [sys.executable, "-u", str(script), *(["--quick"] if run.quick else [])]
    if script.stem == "bench_ledger" and not run.quick:
        command += ["--rows", "1000000"]  # its default, 10M rows, runs for an hour or more
    if script.stem == "bench_status" and not run.quick:
        command += ["--rows", "200000"]  # its default, 1M rows in two ledgers, takes minutes
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    print(f"=== {script.name}{' --quick' if run.quick else ''}", flush=True)
    if quick and not run.quick:
        print("    (does not accept --quick: full run)", flush=True)
    expired = threading.Event()
    code = -1
    with timed() as clock:
        try:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,  # its own process group: a timeout ends its children too
            )
        except OSError as exc:
            run.status = f"not started: {exc}"
            return run

        def expire() -> None:
            expired.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout, expire)
        watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip("\n")
                print(f"  | {line}", flush=True)
                run.tail = [*run.tail[-(TAIL_LINES - 1) :], line]
                result = Result.from_line(line)
                if result is not None:
                    run.results.append(result)
            code, run.peak_rss = wait_peak_rss(process.pid)
            process.returncode = code
        finally:
            watchdog.cancel()
            if process.returncode is None:  # interrupted: leave nothing running
                expire()
                process.wait()
            # a benchmark's servers or helpers left behind would skew the next one
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
    run.seconds = clock.seconds
    if expired.is_set():
        run.status = f"timeout after {timeout:.0f} s"
    elif code != 0:
        run.status = f"exit {code}"
    elif not run.results:
        run.status = "no result"
    print(
        f"=== {script.name}: {run.status}, {run.seconds:.1f} s, "
        f"peak RSS {run.peak_rss / 2**20:.0f} MiB",
        flush=True,
    )
    return run


def print_summary(runs: list[BenchRun]) -> None:
    """The table of every result, then the failures' last lines."""
    rows = []
    for run in runs:
        name = run.name.removeprefix("bench_")
        for row in result_rows(run.results):
            rows.append([name, *row])
        if run.status != "ok":
            rows.append([name, "-", "-", "-", "-", run.status.upper()])
    print()
    print("=== summary" + (" (--quick)" if any(run.quick for run in runs) else ""))
    print_table(["bench", "result", "figure", "target", "ratio", "verdict"], rows)
    for run in runs:
        if run.status != "ok" and run.tail:
            print(f"\n--- last lines of {run.name} ({run.status}):")
            for line in run.tail:
                print(f"    {line}")
    passed = sum(result.ok for run in runs for result in run.results)
    total = sum(len(run.results) for run in runs)
    broken = sum(run.status != "ok" for run in runs)
    print(
        f"\n{passed} of {total} results met their target; "
        f"{len(runs) - broken} of {len(runs)} benchmarks ran cleanly"
    )


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME",
        help="run only benchmarks whose name contains NAME (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float,
        help="seconds one benchmark may run before it is stopped (300; 1800 without --quick)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every run and result to this file")
    args = parser.parse_args()
    timeout = args.timeout or (300.0 if args.quick else 1800.0)
    scripts = discover(args.only)
    if not scripts:
        print("no benchmark matched", file=sys.stderr)
        return 1
    runs = [run_bench(script, args.quick, timeout) for script in scripts]
    print_summary(runs)
    if args.json is not None:
        args.json.write_text(
            json.dumps([asdict(run) for run in runs], indent=2) + "\n", encoding="utf-8"
        )
    return 0 if all(run.ok for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
