"""Rate adherence of ``syncd reconcile`` against a gallery enforcing 10 calls/s.

Run: ``.venv/bin/python benchmarks/bench_rate.py [--quick] [--images N] [--qps 10]
[--side 64]``.

A local gallery server (in this process) answers error 18 to any call beyond ``--qps``
per second (strictly: at most that many in any sliding second, no burst). ``syncd
reconcile`` runs as its own process with ``api.qps = --qps`` and ``api.concurrency = 4``
over a library of ``--images`` new images, ``--side`` pixels a side (large ones make each
request slow to build: its base64 and form encoding). The server's call counter is sampled every
20 ms: the steady rate is the calls between the first and the last sample that saw a
change, over that time; the whole-run rate is the images over the whole process's time.

Printed: steady calls per second (target >= 0.95 x qps), whole-run calls per second
(target >= 0.9 x qps), error-18 answers (target 0), and the API calls per operation.
``$SYNCD_BENCH_CLIENT_PATH`` runs another checkout's syncd (a "before") against the same
server.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    CallSampler,
    Result,
    bench_parser,
    client_config,
    client_env,
    error_answers,
    print_call_counts,
    report,
    strict_gallery,
    write_images,
)

SYNCD = str(Path(sys.executable).with_name("syncd"))
TARGET_SHARE = 0.95
WHOLE_RUN_SHARE = 0.9


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--images", type=int, default=None, help="default 150 (quick: 80)")
    parser.add_argument("--qps", type=float, default=10.0)
    parser.add_argument("--side", type=int, default=64, help="pixels a side of each image")
    args = parser.parse_args()
    count = args.images or (80 if args.quick else 150)

    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        base = Path(tmp)
        write_images(base / "library", count, size=(args.side, args.side))
        with strict_gallery(base / "gallery", args.qps) as server:
            config = client_config(base, server.url, args.qps, "bench")
            with CallSampler(server) as sampler:
                started = time.perf_counter()
                result = subprocess.run(
                    [SYNCD, "reconcile", "-c", str(config)],
                    capture_output=True,
                    text=True,
                    check=False,
                    env=client_env(),
                )
                whole = time.perf_counter() - started
            counts = server.call_counts()
    if result.returncode != 0:
        print(result.stdout, result.stderr, sep="\n")
        return 2
    rate = sampler.rate()
    errors = error_answers(result.stdout)
    print(f"{count} images of {args.side} px a side, api.qps = {args.qps}, the server admits "
          f"{args.qps}/s, concurrency 4")  # fmt: skip
    print_call_counts(counts)
    report(
        [
            Result.at_least("rate: calls per second", rate, "calls/s", TARGET_SHARE * args.qps),
            Result.at_least(
                "rate: whole run, images per second", count / whole, "calls/s",
                WHOLE_RUN_SHARE * args.qps,
            ),  # fmt: skip
            Result.at_most("rate: error answers (18)", errors, "", 0.0),
            Result.at_most(
                "rate: calls beyond one add per image", sum(counts.values()) - count, "", 0.0
            ),  # fmt: skip
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
