"""Fresh change behind a backlog under ``syncd run`` (docs/rules.md, Fresh changes first): a
file a person drops is searchable within settle + 2 s while thousands of calls wait, and the
backlog still drains.

Run: ``.venv/bin/python benchmarks/bench_fresh.py [--quick] [--backlog 2000] [--samples 5]
[--settle 1.0] [--gap 5] [--window 30] [--drain] [--log FILE]``.

A local gallery server (in this process) answers error 18 to any call beyond 10 per second
(strictly: at most 10 in any sliding second, no burst). ``syncd run`` (``api.qps = 10``,
``api.concurrency = 4``) watches a library of ``--backlog`` distinct new images: its
start-up scan queues one add each (200 s of calls at 10/s for 2000). Once 50 of them are
answered, ``--samples`` new images are dropped into the library ``--gap`` seconds apart
(written under an ignored name, then renamed in: complete at once). A sample's latency runs
from its rename to the first poll of ``/_syncd/items`` that lists it (every 50 ms; not an
API call, so it takes none of the rate).

Printed: the samples' latency, median and max (target settle + 2 s each); the backlog's
drain rate, its images added per second over a window of at least ``--window`` seconds
that starts at the first sample and ends after the last one is in (target >= 9/s);
error-18 answers of the server (target 0, counted from its own request log records);
calls beyond one add per image (target 0). ``--drain`` also waits for the whole backlog
and prints its rate from the first add to the last; without it the run stops after the
window (``--quick``: a backlog of 1000, 2 samples). ``--log`` keeps the daemon's debug log,
one JSON object a line with its time, to see where a slow run spent it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import requests
from _common import (
    API_KEY,
    SECRET_KEY,
    Result,
    access_token,
    bench_parser,
    print_call_counts,
    report,
    strict_gallery,
    write_images,
)

LIBRARY: Final = "bench"
GALLERY: Final = "same_hq"
QPS: Final = 10.0
#: the import is under way once the gallery holds this many of the backlog's images
STARTED_ADDS: Final = 50
#: seconds between two polls of the gallery's item list
POLL_EVERY: Final = 0.05
#: the latency target: settle + this many seconds
LATENCY_MARGIN: Final = 2.0
#: the drain target: this share of api.qps (>= 9 calls/s at qps 10)
DRAIN_SHARE: Final = 0.9
#: seconds a sample may take before the run is called broken
SAMPLE_TIMEOUT: Final = 120.0


class Broken(Exception):
    """The run could not measure (the daemon died, a sample never arrived): one line why."""


class RefusalCounter(logging.Handler):
    """Counts the local gallery's answers of one error code, from its request log records
    (``"%s %s%s -> %d %s in %.1f ms"``, whose fifth argument is ``"error CODE"``)."""

    def __init__(self, code: int) -> None:
        super().__init__(logging.DEBUG)
        self._outcome = f"error {code}"
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        # Handler.handle holds the handler's lock around emit: the server's threads count safely
        if isinstance(record.args, tuple) and self._outcome in record.args:
            self.count += 1


@dataclass(frozen=True)
class Snapshot:
    """What the gallery held at ``at`` (perf_counter seconds): the library's paths."""

    at: float
    paths: frozenset[str]

    def backlog(self) -> int:
        """How many of the backlog's images the gallery holds."""
        return sum(path.startswith("backlog/") for path in self.paths)


@dataclass(frozen=True)
class Sample:
    """One dropped image: its path, seconds from rename to listed, backlog held then."""

    path: str
    latency: float
    backlog_held: int


class Run:
    """The daemon under measure and the gallery it feeds, polled over loopback."""

    def __init__(self, url: str, daemon: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.daemon = daemon
        self.log = log
        self.http = requests.Session()
        self.http.params = {"access_token": access_token(url)}  # the extensions ask for it

    def alive(self) -> None:
        """Raise Broken when the daemon has exited."""
        code = self.daemon.poll()
        if code is not None:
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise Broken(f"syncd run exited with {code}:\n" + "\n".join(tail))

    def snapshot(self) -> Snapshot:
        """The gallery's item list now, timed at the middle of the request."""
        started = time.perf_counter()
        answer = self.http.get(f"{self.url}/_syncd/items", params={"gallery": GALLERY}, timeout=30)
        answer.raise_for_status()
        at = (started + time.perf_counter()) / 2
        paths = set()
        for item in answer.json()["items"]:
            brief = json.loads(item["brief"])
            if brief.get("lib") == LIBRARY:
                paths.add(str(brief["path"]))
        return Snapshot(at, frozenset(paths))

    def live_count(self) -> int:
        """Items the gallery holds (its health answer: cheaper than the list)."""
        answer = self.http.get(f"{self.url}/_syncd/health", timeout=30)
        answer.raise_for_status()
        return int(answer.json()["items"][GALLERY])

    def wait_count(self, count: int, timeout: float, what: str) -> Snapshot:
        """Poll until the gallery holds ``count`` items; the list at that moment."""
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            self.alive()
            if self.live_count() >= count:
                return self.snapshot()
            time.sleep(0.2)
        raise Broken(f"timed out after {timeout:.0f} s waiting for {what}")

    def drop(self, root: Path, relpath: str, data: bytes) -> Sample:
        """Write ``data`` at ``root/relpath`` as a person's save does, and time its arrival."""
        target = root / relpath
        part = target.with_name(f".{target.name}.part")  # ignored by watch.ignore
        part.write_bytes(data)
        os.rename(part, target)
        written = time.perf_counter()
        while True:
            snap = self.snapshot()
            if relpath in snap.paths:
                return Sample(relpath, snap.at - written, snap.backlog())
            if snap.at - written > SAMPLE_TIMEOUT:
                raise Broken(f"{relpath} was not in the gallery {SAMPLE_TIMEOUT:.0f} s after")
            self.alive()
            time.sleep(POLL_EVERY)


def write_library(root: Path, count: int) -> None:
    """``count`` distinct small images under ``root/backlog``, 100 to a folder."""
    write_images(root / "backlog", count, size=(48, 48))
    (root / "fresh").mkdir()


def write_config(base: Path, url: str, settle: float) -> Path:
    """The daemon's config: api.qps 10, the library at ``base/library``, no rescans."""
    config = base / "config.toml"
    config.write_text(
        f'[api]\nendpoint = "{url}"\napi_key = "{API_KEY}"\nsecret_key = "{SECRET_KEY}"\n'
        f"qps = {QPS}\nconcurrency = 4\n"
        '[ledger]\npath = "./ledger.db"\n'
        f"[watch]\nsettle = {settle}\ndelete_grace = 30.0\nrescan_interval = 0\n"
        f'[[library]]\nname = "{LIBRARY}"\nroot = "./library"\ngallery = "{GALLERY}"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    return config


def stop(daemon: subprocess.Popen[bytes]) -> int:
    """SIGTERM the daemon and wait for it (killed after 60 s); its exit code."""
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    return daemon.returncode


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--backlog", type=int, default=None, help="default 2000 (quick: 1000)")
    parser.add_argument("--samples", type=int, default=None, help="default 5 (quick: 2)")
    parser.add_argument("--settle", type=float, default=1.0, help="watch.settle, seconds")
    parser.add_argument("--gap", type=float, default=5.0, help="seconds from drop to drop")
    parser.add_argument("--window", type=float, default=30.0, help="drain window, seconds")
    parser.add_argument("--drain", action="store_true", help="wait for the whole backlog too")
    parser.add_argument(
        "--log", type=Path, help="keep the daemon's log (-v, JSON lines) in this file"
    )
    args = parser.parse_args()
    backlog = args.backlog or (1000 if args.quick else 2000)
    count = args.samples or (2 if args.quick else 5)
    from devkit.imagegen import make_image

    refusals = RefusalCounter(18)
    server_log = logging.getLogger("syncd.gallery")
    server_log.setLevel(logging.DEBUG)
    server_log.addHandler(refusals)
    # the gallery's own warnings still show; its per-request debug lines only feed the count
    shown = logging.StreamHandler()
    shown.setLevel(logging.WARNING)
    logging.getLogger().addHandler(shown)

    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        base = Path(tmp)
        root = base / "library"
        started = time.perf_counter()
        write_library(root, backlog)
        print(f"generated {backlog} images in {time.perf_counter() - started:.1f} s")
        images = [make_image(1_000_000 + n, size=(48, 48)) for n in range(count)]
        with strict_gallery(base / "gallery", QPS) as server:
            config = write_config(base, server.url, args.settle)
            log = base / "daemon.log"
            with open(log, "wb") as out:
                daemon = subprocess.Popen(
                    [sys.executable, "-m", "syncd.cli", *(["-v"] if args.log else []),
                     "run", "-c", str(config), *(["--log-format", "json"] if args.log else [])],
                    cwd=base, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            run = Run(server.url, daemon, log)
            samples: list[Sample] = []
            whole: tuple[Snapshot, Snapshot] | None = None
            try:
                launched = time.perf_counter()
                first = run.wait_count(1, 600, "the first add")
                under_way = run.wait_count(STARTED_ADDS, 600, f"{STARTED_ADDS} adds")
                print(f"first add {first.at - launched:.1f} s after start; "
                      f"{under_way.backlog()} in after {under_way.at - launched:.1f} s")  # fmt: skip
                window_start = run.snapshot()
                dropped = window_start.at
                for n, data in enumerate(images):
                    if n:
                        time.sleep(max(0.0, dropped + args.gap - time.perf_counter()))
                    dropped = time.perf_counter()
                    sample = run.drop(root, f"fresh/{n}.jpg", data)
                    samples.append(sample)
                    print(f"sample {n}: {sample.latency:.2f} s, "
                          f"backlog {sample.backlog_held}/{backlog} in")  # fmt: skip
                while time.perf_counter() < window_start.at + args.window:
                    run.alive()
                    time.sleep(0.2)
                window_end = run.snapshot()
                if args.drain:
                    total = backlog + count
                    whole = first, run.wait_count(total, backlog / QPS * 3 + 300, "the backlog")
            except Broken as exc:
                print(f"bench_fresh: {exc}", file=sys.stderr)
                return 2
            finally:
                code = stop(daemon)
                if args.log is not None:
                    shutil.copyfile(log, args.log)
            held = run.snapshot()
            run.http.close()
            counts = server.call_counts()
    if code != 0:
        print(f"syncd run exited with {code} on SIGTERM")
    drained = window_end.backlog() - window_start.backlog()
    seconds = window_end.at - window_start.at
    if window_end.backlog() >= backlog:
        print("the backlog ran out inside the window: its rate undercounts (larger --backlog)")
    latencies = [s.latency for s in samples]
    print(f"\n{backlog} backlog images, {count} dropped {args.gap:.0f} s apart; api.qps = {QPS}, "
          f"the server admits {QPS}/s; settle {args.settle} s")  # fmt: skip
    print(f"backlog: {window_start.backlog()} -> {window_end.backlog()} over {seconds:.1f} s "
          f"from the first drop; {held.backlog()} in when stopped")  # fmt: skip
    print_call_counts(counts)
    target = args.settle + LATENCY_MARGIN
    results = [
        Result.at_most("fresh: latency median", statistics.median(latencies), "s", target),
        Result.at_most("fresh: latency max", max(latencies), "s", target),
        Result.at_least("fresh: backlog drain", drained / seconds, "calls/s", DRAIN_SHARE * QPS),
    ]
    if whole is not None:
        begin, end = whole
        rate = (end.backlog() - begin.backlog()) / (end.at - begin.at)
        results.append(
            Result.at_least("fresh: whole backlog drain", rate, "calls/s", DRAIN_SHARE * QPS)
        )
    results += [
        Result.at_most("fresh: error answers (18)", refusals.count, "", 0.0),
        Result.at_most(
            "fresh: calls beyond one add per image", sum(counts.values()) - len(held.paths), "", 0.0
        ),
    ]
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
