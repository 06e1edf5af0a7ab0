"""How fast a no-op ``syncd reconcile`` and ``syncd status`` start and end.

Run: ``.venv/bin/python benchmarks/bench_start.py [--quick] [--repeat 21]``.

A library of the repository's ``sample-images/`` in the embedded gallery, a SQLite ledger,
synced once by ``syncd reconcile`` outside the timing. Then, interleaved and ``--repeat``
times each (``--quick``: 9), four whole processes: ``python -c pass`` (the interpreter's own
start), ``python -c "import sqlalchemy"`` (the ledger's database layer, the floor of any
command that reads the ledger), the no-op ``syncd reconcile`` (nothing changed: no gallery
is reached) and ``syncd status``. Each one's wall time and CPU time (user + system, its
children included: the walking child of a reconcile) are taken; the figures are medians.
Target: each of the two commands <= 0.25 s, wall and CPU.

The processes may write Python's bytecode cache (``PYTHONDONTWRITEBYTECODE`` is dropped for
them, and one untimed run of each goes first): an installed syncd has its modules compiled,
and compiling them again at each start is no part of what a user waits for.
``$SYNCD_BENCH_CLIENT_PATH=DIR`` runs the ``syncd`` of another checkout (a ``git worktree``
of an older commit), for a before/after. ``--before DIR`` times that checkout's two commands
in the same run, interleaved with this one's (each on a library and ledger of its own, so a
ledger schema either one does not know never meets it), and prints each one's time over
the checkout's: the side by side a busy machine needs.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO_ROOT, Result, bench_parser, client_env, print_table, report

#: target: seconds of wall and of CPU for a no-op reconcile or status
TARGET_SECONDS = 0.25
#: the installed console script, as users run it
SYNCD = str(Path(sys.executable).with_name("syncd"))


def write_setup(base: Path) -> Path:
    """A library of the sample images and a config syncing it into the embedded gallery."""
    root = base / "lib"
    root.mkdir(parents=True)
    for image in sorted((REPO_ROOT / "sample-images").glob("*.jpg")):
        shutil.copy(image, root / image.name)
    config = base / "config.toml"
    config.write_text(
        "[api]\n"
        'endpoint = "embedded"\n'
        "[ledger]\n"
        f'path = "{base / "ledger.db"}"\n'
        "[[library]]\n"
        'name = "lib"\n'
        f'root = "{root}"\n'
        'gallery = "same_hq"\n',
        encoding="utf-8",
    )
    return config


def run_timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``argv`` to its end: its wall time, its CPU time (user + system, children it
    waited for included) and its stdout. Raises when it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # wait4: the child's own resource usage
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        shown, said = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[-2:])}: exit {proc.returncode}: {said}")
    return wall, usage.ru_utime + usage.ru_stime, shown


def set_up(base: Path, env: dict[str, str]) -> dict[str, str]:
    """The library of :func:`write_setup` under ``base``, synced once by the ``syncd`` that
    ``env`` runs: that environment, naming the config."""
    its_env = dict(env, SYNCD_CONFIG=str(write_setup(base)))
    subprocess.run([SYNCD, "reconcile"], env=its_env, check=True, capture_output=True)
    return its_env


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--repeat", type=int, help="timed runs of each process (21; --quick 9)")
    parser.add_argument(
        "--before",
        type=Path,
        metavar="DIR",
        help="also time the syncd of the checkout DIR (a git worktree), interleaved",
    )
    args = parser.parse_args()
    repeat = args.repeat or (9 if args.quick else 21)
    env = client_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    base = Path(tempfile.mkdtemp(prefix="bench_start_"))
    try:
        envs = {"": set_up(base / "this", env)}
        if args.before is not None:
            before = dict(env, PYTHONPATH=str(args.before.resolve()))
            envs["before: "] = set_up(base / "before", before)
        runs: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            "python -c 'import sqlalchemy'": ([sys.executable, "-c", "import sqlalchemy"], env),
        }
        for prefix, its_env in envs.items():
            runs[f"{prefix}syncd reconcile (no-op)"] = ([SYNCD, "reconcile"], its_env)
            runs[f"{prefix}syncd status"] = ([SYNCD, "status"], its_env)
        for argv, its_env in runs.values():  # untimed: writes the bytecode cache, warms caches
            run_timed(argv, its_env)
        for prefix, its_env in envs.items():
            _, _, shown = run_timed([SYNCD, "reconcile"], its_env)
            if "0 new or changed" not in shown or "0 API calls" not in shown:
                raise SystemExit(f"{prefix}the reconcile was not a no-op:\n{shown}")
        walls: dict[str, list[float]] = {name: [] for name in runs}
        cpus: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeat):
            for name, (argv, its_env) in runs.items():
                wall, cpu, _ = run_timed(argv, its_env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    median_wall = {name: statistics.median(times) for name, times in walls.items()}
    median_cpu = {name: statistics.median(times) for name, times in cpus.items()}
    floor = median_cpu["python -c 'import sqlalchemy'"]
    print(f"medians of {repeat} interleaved runs each:")
    print_table(
        ["process", "wall", "cpu", "cpu over import sqlalchemy"],
        [
            [
                name,
                f"{median_wall[name]:.3f} s",
                f"{median_cpu[name]:.3f} s",
                f"{median_cpu[name] - floor:+.3f} s",
            ]
            for name in runs
        ],
    )
    if args.before is not None:
        print(f"this checkout over {args.before}:")
        print_table(
            ["process", "wall", "cpu"],
            [
                [
                    name,
                    f"{median_wall[name] / median_wall['before: ' + name]:.3f}",
                    f"{median_cpu[name] / median_cpu['before: ' + name]:.3f}",
                ]
                for name in ("syncd reconcile (no-op)", "syncd status")
            ],
        )
    results = []
    for name in ("syncd reconcile (no-op)", "syncd status"):
        results.append(Result.at_most(f"{name}, wall", median_wall[name], "s", TARGET_SECONDS))
        results.append(Result.at_most(f"{name}, CPU", median_cpu[name], "s", TARGET_SECONDS))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
