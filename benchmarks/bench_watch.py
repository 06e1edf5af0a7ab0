"""Watch latency and idle cost of `syncd run`.

Run: ``.venv/bin/python benchmarks/bench_watch.py [--settle 1.0] [--samples 40]
[--library-files 1000] [--pad-files 0] [--idle-files 100000] [--idle-seconds 30]
[--skip-idle] [--skip-latency]``.

latency: a local gallery server runs in this process; `syncd run` watches a library that
already holds ``--library-files`` synced images (plus ``--pad-files`` copies of them). Each sample writes one new image and polls
the gallery's same-image search until a hit names that path. Targets: median ≤ settle +
0.3 s, p99 ≤ settle + 1 s.

idle: `syncd run` watches a generated tree of ``--idle-files`` files (distinct images
copied many times over, so the ledger holds every path); once the start-up reconcile is
done and the queue is empty, its CPU time and RSS are read from /proc/<pid>/stat and
/proc/<pid>/status over ``--idle-seconds``. Targets: < 1 % of a core, RSS ≤ 150 MB.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Result, bench_parser  # noqa: E402
from _common import report as shared_report  # noqa: E402

from devkit.imagegen import make_image  # noqa: E402
from syncd.api.baidu.client import ImageSearchClient  # noqa: E402
from syncd.config import ApiConfig  # noqa: E402
from syncd.gallery.server import GalleryServer  # noqa: E402

API_KEY, SECRET_KEY = "bench-ak", "bench-sk"
GALLERY = "same_hq"


def write_config(
    tmp: Path, server: GalleryServer, root: Path, settle: float, rescan: float = 0
) -> Path:
    config = tmp / "config.toml"
    config.write_text(
        "\n".join(
            [
                "[api]",
                f'endpoint = "{server.url}"',
                f'api_key = "{API_KEY}"',
                f'secret_key = "{SECRET_KEY}"',
                "qps = 1000.0",
                "concurrency = 4",
                "[ledger]",
                f'path = "{tmp / "ledger.db"}"',
                "[watch]",
                f"settle = {settle}",
                "delete_grace = 5.0",
                f"rescan_interval = {rescan}",
                "[[library]]",
                'name = "bench"',
                f'root = "{root}"',
                f'gallery = "{GALLERY}"',
            ]
        )
        + "\n"
    )
    return config


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "syncd.cli", "run", "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def live_items(server: GalleryServer) -> int:
    params = {"gallery": GALLERY, "access_token": server.access_token()}
    answer = requests.get(f"{server.url}/_syncd/items", params=params, timeout=60)
    return len(answer.json()["items"])


def wait_for(check: object, timeout: float, what: str) -> None:
    assert callable(check)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def report(
    name: str, figure: float, target: float, unit: str, lower_is_better: bool = True
) -> bool:
    """Print one figure against its target as the shared harness does (a BENCH line)."""
    result = (Result.at_most if lower_is_better else Result.at_least)(name, figure, unit, target)
    shared_report([result])
    return result.ok


def bench_latency(settle: float, samples: int, library_files: int, pad_files: int) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="syncd-bench-watch-"))
    root = tmp / "library"
    root.mkdir()
    for i in range(library_files):
        (root / f"old{i // 100:03d}").mkdir(exist_ok=True)
        (root / f"old{i // 100:03d}" / f"{i}.jpg").write_bytes(make_image(i, (48, 48)))
    # padding: copies of the library's first images, so the ledger holds many paths cheaply
    for i in range(pad_files):
        d = root / "pad" / f"p{i // 1000:03d}"
        if i % 1000 == 0:
            d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / "old000" / f"{i % min(100, library_files)}.jpg", d / f"{i}.jpg")
    images = [make_image(1_000_000 + i, (64, 64)) for i in range(samples)]
    server = GalleryServer(tmp / "gallery", api_key=API_KEY, secret_key=SECRET_KEY)
    server.start()
    proc = start_daemon(write_config(tmp, server, root, settle), tmp / "daemon.log")
    client = ImageSearchClient.from_config(
        ApiConfig(endpoint=server.url, api_key=API_KEY, secret_key=SECRET_KEY)
    )
    ok = False
    try:
        wait_for(lambda: live_items(server) == library_files, 600, "the library to sync")
        time.sleep(settle + 1)
        lat: list[float] = []
        for n, data in enumerate(images):
            rel = f"new/{n}.jpg"
            (root / "new").mkdir(exist_ok=True)
            target = root / rel
            tmp_file = root / "new" / f".{n}.jpg.part"
            tmp_file.write_bytes(data)
            t0 = time.monotonic()
            os.rename(tmp_file, target)  # the file is complete at t0
            while True:
                page = client.search(GALLERY, image=data)
                if any(json.loads(h.brief).get("path") == rel for h in page.hits):
                    lat.append(time.monotonic() - t0)
                    break
                if time.monotonic() - t0 > settle + 60:
                    raise SystemExit(f"sample {n} never became searchable")
                time.sleep(0.02)
        lat.sort()
        median = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
        print(f"watch latency over {len(lat)} samples, settle {settle} s, "
              f"library of {library_files + pad_files} files")  # fmt: skip
        ok = report("latency median (s)", median, settle + 0.3, "s")
        ok &= report("latency p99 (s)", p99, settle + 1.0, "s")
    finally:
        client.close()
        stop_daemon(proc)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return ok


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_idle(files: int, seconds: float, distinct: int = 1000) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="syncd-bench-idle-"))
    root = tmp / "library"
    images = [make_image(2_000_000 + i, (32, 32)) for i in range(distinct)]
    t0 = time.monotonic()
    for i in range(files):
        d = root / f"d{i // 10_000:02d}" / f"e{(i // 100) % 100:02d}"
        if i % 100 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.jpg").write_bytes(images[i % distinct])
    print(f"generated {files} files in {time.monotonic() - t0:.1f} s")
    server = GalleryServer(tmp / "gallery", api_key=API_KEY, secret_key=SECRET_KEY)
    server.start()
    proc = start_daemon(write_config(tmp, server, root, 2.0), tmp / "daemon.log")
    ok = False
    try:
        t0 = time.monotonic()
        wait_for(lambda: live_items(server) == distinct, 1800, "the start-up reconcile")
        # quiet: no scan, no calls for a while (the last adds' bookkeeping is done)
        time.sleep(10)
        print(f"start-up reconcile of {files} files took {time.monotonic() - t0:.1f} s")
        cpu0, w0 = _cpu_seconds(proc.pid), time.monotonic()
        rss = 0.0
        while time.monotonic() - w0 < seconds:
            time.sleep(1)
            rss = max(rss, _rss_mb(proc.pid))
        share = (_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - w0) * 100
        print(f"idle while watching {files} files, over {seconds:.0f} s")
        ok = report("idle CPU (% of a core)", share, 1.0, "%")
        ok &= report("RSS (MB)", rss, 150.0, "MB")
    finally:
        stop_daemon(proc)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return ok


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--library-files", type=int, default=1000)
    parser.add_argument("--pad-files", type=int, default=0, help="extra copies in the library")
    parser.add_argument("--idle-files", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-idle", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.idle_files, args.idle_seconds = 15, 20_000, 10.0
    ok = True
    if not args.skip_latency:
        ok &= bench_latency(args.settle, args.samples, args.library_files, args.pad_files)
    if not args.skip_idle:
        ok &= bench_idle(args.idle_files, args.idle_seconds)
    # the run worked: exit 0 whatever the figures (run_all reads the BENCH lines)
    print('all targets met' if ok else 'some targets missed')


if __name__ == "__main__":
    main()
