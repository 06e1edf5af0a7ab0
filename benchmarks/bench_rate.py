"""Rate adherence of ``syncd reconcile`` against a gallery enforcing 10 calls/s.

Run: ``.venv/bin/python benchmarks/bench_rate.py [--quick] [--images N] [--qps 10]``.

A local gallery server (in this process) answers error 18 to any call beyond ``--qps``
per second (strictly: at most that many in any sliding second, no burst). ``syncd
reconcile`` runs as its own process with ``api.qps = --qps`` and ``api.concurrency = 4``
over a library of ``--images`` new images. The server's call counter is sampled every
20 ms: the steady rate is the calls between the first and the last sample that saw a
change, over that time; the whole-run rate is the images over the whole process's time.

Printed: steady calls per second (target >= 0.95 x qps), whole-run calls per second
(target >= 0.9 x qps), error-18 answers (target 0), and the API calls per operation.
``$SYNCD_BENCH_CLIENT_PATH`` runs another checkout's syncd (a "before") against the same
server.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import (
    API_KEY,
    SECRET_KEY,
    Result,
    bench_parser,
    client_env,
    report,
    running_gallery,
    tests_on_path,
)

SYNCD = str(Path(sys.executable).with_name("syncd"))
TARGET_SHARE = 0.95
WHOLE_RUN_SHARE = 0.9
SAMPLE_EVERY = 0.02


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--images", type=int, default=None, help="default 150 (quick: 80)")
    parser.add_argument("--qps", type=float, default=10.0)
    args = parser.parse_args()
    count = args.images or (80 if args.quick else 150)
    tests_on_path()
    from imagegen import make_image

    from syncd.gallery.faults import FaultConfig

    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        base = Path(tmp)
        root = base / "library"
        for n in range(count):
            folder = root / f"d{n // 100:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"img{n:05d}.jpg").write_bytes(make_image(n, size=(64, 64)))
        with running_gallery(base / "gallery", FaultConfig(qps_limit=args.qps)) as server:
            config = base / "config.toml"
            config.write_text(
                f'[api]\nendpoint = "{server.url}"\napi_key = "{API_KEY}"\n'
                f'secret_key = "{SECRET_KEY}"\nqps = {args.qps}\nconcurrency = 4\n'
                '[ledger]\npath = "./ledger.db"\n[watch]\nsettle = 0.0\n'
                '[[library]]\nname = "bench"\nroot = "./library"\ngallery = "same_hq"\n',
                encoding="utf-8",
            )
            config.chmod(0o600)
            samples: list[tuple[float, int]] = []
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    samples.append((time.perf_counter(), sum(server.call_counts().values())))
                    time.sleep(SAMPLE_EVERY)

            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                started = time.perf_counter()
                result = subprocess.run(
                    [SYNCD, "reconcile", "-c", str(config)],
                    capture_output=True,
                    text=True,
                    check=False,
                    env=client_env(),
                )
                whole = time.perf_counter() - started
            finally:
                done.set()
                sampler.join()
            counts = server.call_counts()
    if result.returncode != 0:
        print(result.stdout, result.stderr, sep="\n")
        return 2
    changes = [(t, n) for (t, n), (_, before) in zip(samples[1:], samples, strict=False)
               if n != before]  # fmt: skip
    (t0, n0), (t1, n1) = changes[0], changes[-1]
    rate = (n1 - n0) / (t1 - t0)
    match = re.search(r"(\d+) answered with an error", result.stdout)
    errors = int(match.group(1)) if match else 0
    print(f"{count} images, api.qps = {args.qps}, the server admits {args.qps}/s, concurrency 4")
    print(f"{'operation':<18}{'calls':>8}")
    for (gallery, op), n in sorted(counts.items()):
        print(f"{gallery + '/' + op:<18}{n:>8}")
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
