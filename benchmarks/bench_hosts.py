"""Several hosts, one account: three hosts together stay
within the account's rate and still use all of it.

Run: ``.venv/bin/python benchmarks/bench_hosts.py [--quick] [--images N] [--qps 10]
[--hosts 3] [--ledger postgresql|sqlite]``.

A local gallery server (in this process) answers error 18 to any call beyond ``--qps`` per
second (strictly: at most that many in any sliding second, no burst). ``--hosts`` ``syncd reconcile``
processes start at once, each its own ``host.name`` with ``api.qps = --qps`` and
``api.concurrency = 4`` over its own library of ``--images`` new images, all on one ledger
(a fresh PostgreSQL database by default; ``$SYNCD_BENCH_PG_URL`` names a server). The
server's call counter is sampled every 20 ms: the rate is the calls between the first and
the last sample that saw a change, over that time.

Printed: the hosts' calls per second together (target >= 0.95 x qps), error-18 answers
(target 0), calls beyond one add per image (target 0), and each host's own calls.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from _common import (
    API_KEY,
    SECRET_KEY,
    Result,
    bench_parser,
    client_env,
    postgresql_database,
    report,
    running_gallery,
    tests_on_path,
)

SYNCD = str(Path(sys.executable).with_name("syncd"))
TARGET_SHARE = 0.95
SAMPLE_EVERY = 0.02


def host_config(base: Path, name: str, server_url: str, qps: float, ledger_lines: str) -> Path:
    """The config file of host ``name`` (its library at ``base/name/library``)."""
    folder = base / name
    config = folder / "config.toml"
    config.write_text(
        f'[api]\nendpoint = "{server_url}"\napi_key = "{API_KEY}"\n'
        f'secret_key = "{SECRET_KEY}"\nqps = {qps}\nconcurrency = 4\n'
        f'[ledger]\n{ledger_lines}\n[host]\nname = "{name}"\n[watch]\nsettle = 0.0\n'
        f'[[library]]\nname = "{name}"\nroot = "./library"\ngallery = "same_hq"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    return config


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--images", type=int, default=None, help="per host; default 150 (quick: 50)")
    parser.add_argument("--qps", type=float, default=10.0)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--ledger", choices=("postgresql", "sqlite"), default="postgresql")
    args = parser.parse_args()
    count = args.images or (50 if args.quick else 150)
    tests_on_path()
    from imagegen import make_image

    from syncd.gallery.faults import FaultConfig

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
            root = base / name / "library"
            for n in range(count):
                folder = root / f"d{n // 100:03d}"
                folder.mkdir(parents=True, exist_ok=True)
                image = make_image(h * 100_000 + n, size=(64, 64))
                (folder / f"img{n:05d}.jpg").write_bytes(image)
        server = stack.enter_context(
            running_gallery(base / "gallery", FaultConfig(qps_limit=args.qps))
        )
        configs = [host_config(base, n, server.url, args.qps, ledgers[n]) for n in names]
        samples: list[tuple[float, int]] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append((time.perf_counter(), sum(server.call_counts().values())))
                time.sleep(SAMPLE_EVERY)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
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
        finally:
            done.set()
            sampler.join()
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
    changes = [(t, n) for (t, n), (_, before) in zip(samples[1:], samples, strict=False)
               if n != before]  # fmt: skip
    (t0, n0), (t1, n1) = changes[0], changes[-1]
    rate = (n1 - n0) / (t1 - t0)
    errors = 0
    print(f"{args.hosts} hosts x {count} images on a {args.ledger} ledger, api.qps = {args.qps} "
          f"each, the server admits {args.qps}/s, concurrency 4 each")  # fmt: skip
    for name, (out, _err) in zip(names, outputs, strict=True):
        match = re.search(r"(\d+) answered with an error", out)
        errors += int(match.group(1)) if match else 0
        made = re.search(r"(\d+) API calls", out)
        print(f"  {name}: {made.group(0) if made else '?'}")
    print(f"{'operation':<18}{'calls':>8}")
    for (gallery, op), n in sorted(counts.items()):
        print(f"{gallery + '/' + op:<18}{n:>8}")
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
