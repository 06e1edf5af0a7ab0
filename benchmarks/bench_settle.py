"""A rescan under `syncd run` is not held by a file still being written (docs/rules.md, Settle).

Run: ``.venv/bin/python benchmarks/bench_settle.py [--quick] [--files 2000] [--settle 2.0]``.

A library of ``--files`` images is scanned once into a SQLite ledger. Then, side by side in
one run, three rescans of it: the daemon's full rescan (``scan_paths`` with a full-rescan
``LookAgain``) with nothing being written, the same with one more file being rewritten every
0.2 s (through a hard link outside the library, as a writer on another host: no event, only
its mtime says so), and the one-shot rescan ``reconcile`` makes (``scan_libraries``) with
that writer.

Printed: how long the writer holds the daemon's rescan (its time less the quiet one's;
target ≤ 0.2 s, where waiting for the writer on the work thread would take a few rounds of
``--settle``), and, for comparison, how long it holds the one-shot rescan, which waits for
it (no target: that wait is the one-shot's behaviour).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Result, bench_parser, report  # noqa: E402

from syncd.config import load_config  # noqa: E402
from syncd.ledger.schema import open_ledger  # noqa: E402
from syncd.paths.handoff import LookAgain  # noqa: E402
from syncd.scan.scanner import scan_libraries, scan_paths  # noqa: E402

#: target: seconds a writer may hold the daemon's rescan
HELD_AT_MOST = 0.2


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=2.0)
    args = parser.parse_args()
    if args.quick:
        args.files = 300
    from devkit.imagegen import make_image

    tmp = Path(tempfile.mkdtemp(prefix="syncd-bench-settle-"))
    try:
        root = tmp / "bench"
        for n in range(args.files):
            folder = root / f"d{n // 100:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{n}.jpg").write_bytes(make_image(n, (32, 32)))
        (tmp / "config.toml").write_text(
            "\n".join(
                [
                    "[ledger]",
                    'path = "./data/ledger.db"',
                    "[watch]",
                    f"settle = {args.settle}",
                    "[[library]]",
                    'name = "bench"',
                    'root = "./bench"',
                    'gallery = "similar"',
                ]
            )
            + "\n"
        )
        config = load_config(tmp / "config.toml")
        ledger = open_ledger(config.ledger)
        old = time.time() - 10 * args.settle  # every file of the library is quiet
        for dirpath, _, names in os.walk(root):
            for name in names:
                os.utime(os.path.join(dirpath, name), (old, old))
        scan_libraries(ledger, config)
        full = [LookAgain("bench", full_rescan=True)]

        started = time.perf_counter()
        quiet = scan_paths(ledger, config, full).libraries[0]
        quiet_s = time.perf_counter() - started
        assert quiet.settling == 0

        outside = tmp / "elsewhere.jpg"
        outside.write_bytes(make_image(10**6, (32, 32)))
        os.link(outside, root / "writing.jpg")
        stop = threading.Event()

        def write() -> None:
            while not stop.wait(0.2):
                outside.write_bytes(make_image(10**6, (32, 32)))

        writer = threading.Thread(target=write)
        writer.start()
        try:
            started = time.perf_counter()
            daemon = scan_paths(ledger, config, full).libraries[0]
            daemon_s = time.perf_counter() - started
            started = time.perf_counter()
            oneshot = scan_libraries(ledger, config).libraries[0]
            oneshot_s = time.perf_counter() - started
        finally:
            stop.set()
            writer.join()
        ledger.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert daemon.settling_paths == ["writing.jpg"] and oneshot.settling == 1
    print(
        f"rescan of {args.files + 1} files, settle {args.settle} s: quiet {quiet_s:.3f} s, "
        f"with a writer {daemon_s:.3f} s (daemon), {oneshot_s:.3f} s (one-shot, waits)"
    )
    report(
        [
            Result.at_most(
                "daemon rescan held by a writer (s)",
                max(0.0, daemon_s - quiet_s),
                "s",
                HELD_AT_MOST,
            ),
        ]
    )
    print(f"one-shot rescan held by the writer: {max(0.0, oneshot_s - quiet_s):.3f} s (it waits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
