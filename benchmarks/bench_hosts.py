"""Several hosts, one account: three hosts together stay
within the account's rate and still use all of it.

Run: ``.venv/bin/python benchmarks/bench_hosts.py [--quick] [--images N] [--qps 10]
[--hosts 3] [--ledger postgresql|sqlite] [--side 64]``.

A local gallery server (in this process) answers error 18 to any call beyond ``--qps`` per
second (strictly: at most that many in any sliding second, no burst). ``--hosts`` ``syncd reconcile``
processes start at once, each its own ``host.name`` with ``api.qps = --qps`` and
``api.concurrency = 4`` over its own library of ``--images`` new images (``--side`` pixels a
side: large ones make each request slow to build), all on one ledger
(a fresh PostgreSQL database by default; ``$SYNCD_BENCH_PG_URL`` names a server). The
server's call counter is sampled every 20 ms: the rate is the calls between the first and
the last sample that saw a change, over that time.

Printed: the hosts' calls per second together (target >= 0.95 x qps), error-18 answers
(target 0), calls beyond one add per image (target 0), and each host's own calls.
``$SYNCD_BENCH_CLIENT_PATH`` runs another checkout's syncd (a "before") in every host
against the same server.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from _common import (
    CallSampler,
    Result,
    bench_parser,
    client_config,
    client_env,
    error_answers,
    postgresql_database,
    print_call_counts,
    report,
    strict_gallery,
    write_images,
)

SYNCD = str(Path(sys.executable).with_name("syncd"))
TARGET_SHARE = 0.95


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--images", type=int, default=None, help="per host; default 150 (quick: 50)")
    parser.add_argument("--qps", type=float, default=10.0)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--ledger", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--side", type=int, default=64, help="pixels a side of each image")
    args = parser.parse_args()
    count = args.images or (50 if args.quick else 150)

    names = [f"host-{n + 1}" for n in range(args.hosts)]
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp, ExitStack() as stack:
        base = Path(tmp)
        if args.ledger == "postgresql":
            url = stack.enter_context(postgresql_database())
            ledgers = {name: f'url = "{url}"\nstate_dir = "./state"' for name in names}
        else:
            shared = base / "shared" / "ledger.db"
            ledgers = {name: f'path = "{shared}"' for name in names}
        for h, name in enumerate(names):
            write_images(
                base / name / "library", count, first_seed=h * 100_000, size=(args.side, args.side)
            )
        server = stack.enter_context(strict_gallery(base / "gallery", args.qps))
        configs = [
            client_config(base / name, server.url, args.qps, name, ledgers[name], host=name)
            for name in names
        ]
        with CallSampler(server) as sampler:
            procs = [
                subprocess.Popen(
                    [SYNCD, "reconcile", "-c", str(config)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=client_env(),
                )
                for config in configs
            ]
            outputs = [proc.communicate() for proc in procs]
        counts = server.call_counts()
    failed = [
        (name, proc.returncode, out, err)
        for name, proc, (out, err) in zip(names, procs, outputs, strict=True)
        if proc.returncode != 0
    ]
    for name, code, out, err in failed:
        print(f"{name}: reconcile exited {code}", out, err, sep="\n")
    if failed:
        return 2
    rate = sampler.rate()
    errors = 0
    print(f"{args.hosts} hosts x {count} images of {args.side} px a side on a {args.ledger} "
          f"ledger, api.qps = {args.qps} each, the server admits {args.qps}/s, concurrency 4 "
          "each")  # fmt: skip
    for name, (out, _err) in zip(names, outputs, strict=True):
        errors += error_answers(out)
        made = re.search(r"(\d+) API calls", out)
        print(f"  {name}: {made.group(0) if made else '?'}")
    print_call_counts(counts)
    total = count * args.hosts
    report(
        [
            Result.at_least(
                "hosts: calls per second together", rate, "calls/s", TARGET_SHARE * args.qps
            ),
            Result.at_most("hosts: error answers (18)", errors, "", 0.0),
            Result.at_most(
                "hosts: calls beyond one add per image", sum(counts.values()) - total, "", 0.0
            ),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
