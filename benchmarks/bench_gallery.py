"""The local gallery server: search latency, partial-copy recall, add cost and restart at 100k items.

Run: ``.venv/bin/python benchmarks/bench_gallery.py [--quick] [--items 100000]``.

The gallery must not be the bottleneck of syncd's own benchmarks, and a search in a
gallery of 100k items must answer well under a second (an index, not a row scan).

1. Populate: ``--items`` items in each of same_hq and similar, written through the
   gallery's own ``GalleryStore.insert`` with features from its own ``features_of``
   (synthetic blocky thumbnails, no image decode), plus ``--probes`` real JPEGs
   decoded by the gallery's own ``decode_image_bytes``. The server then loads them at
   start exactly as after any restart. same_hq items also get keypoints: ``--originals``
   textured pictures (devkit/textured.py) with their real ORB keypoints, and the
   synthetic items keypoints whose descriptors are drawn from a pool of real ones
   (with a few bits flipped), so the inverted index holds 100k items' worth of
   realistic words without 100k ORB runs (written through the store, not over HTTP:
   100k adds over HTTP would take most of an hour on this machine). Every item has
   its same-image fingerprint (``FingerprintStore``): the real one of a decoded
   picture, a synthetic item's grown from its thumbnail.
2. Restart: wall time of ``GalleryServer.start()`` (store load and index build until
   listening) in a fresh process, best of ``--restarts``, and its peak RSS; a bare
   SQLite read of the same rows is printed beside it for scale. The first start, with
   no keypoint index saved yet (as after an upgrade), builds it and is printed apart.
Both servers of steps 3 and 4 run in a child process, so the benchmark's HTTP clients
do not share their interpreter lock.

3. Search: sequential HTTP searches with the probe images (base64 encoded beforehand),
   median and p99 per gallery; each answer is checked to hold the probe itself.
   Partial copies: a crop of each original (75 % x 75 %, off centre, rescaled to 80 %,
   JPEG q75) searched in same_hq: the share that finds its original first (recall),
   and as many unrelated textured pictures: how many find anything (false hits);
   median and p99 of all these searches.
4. Add: 4 client threads post the same pre-encoded add bodies of fresh 64x64 JPEGs to
   the populated same_hq gallery and to a trivial WSGI app on the same waitress stack
   that answers a fixed JSON, in alternating rounds; the ratio of their throughputs
   shows what the gallery's own work adds to the HTTP stack's cost per add.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

import cv2
import numpy as np
import requests
from _common import (
    API_KEY,
    SECRET_KEY,
    Result,
    access_token,
    bench_parser,
    peak_rss_bytes,
    percentile,
    report,
    timed,
)

from devkit.imagegen import make_image
from devkit.textured import crop_copy, textured_image
from syncd.api.baidu.galleries import GALLERIES, GalleryName
from syncd.gallery.fingerprint import FINE_SIDE, Fingerprint, fingerprint_of
from syncd.gallery.fingerprint_store import FingerprintStore
from syncd.gallery.images import decode_image_bytes
from syncd.gallery.index import IndexEntry, features_of
from syncd.gallery.keypoints import CHECK_SIDE, LocalFeatures, local_features_of
from syncd.gallery.server import (
    CHANNEL_TIMEOUT,
    CONNECTION_LIMIT,
    MAX_BODY_BYTES,
    THREADS,
    GalleryServer,
)
from syncd.gallery.store import DB_NAME, GalleryStore
from syncd.serving import WaitressServer

#: the target: a search in a gallery of 100k items answers well under a second
SEARCH_P99_TARGET: Final = 1.0
#: seconds of restart allowed per stored item: 5 s for 100k items in each of two galleries
RESTART_SECONDS_PER_ITEM: Final = 5.0 / 200_000
#: the gallery's add throughput against a server that only reads the body and answers:
#: at least half, so the HTTP stack and the client, not the gallery, set an ingest's pace
ADD_RATIO_TARGET: Final = 0.5
#: share of crops (75 % x 75 %, rescaled, re-encoded) that must find their original first
CROP_RECALL_TARGET: Final = 0.95
#: pictures whose keypoints make the pool the synthetic items draw descriptors from
POOL_PICTURES: Final = 3000
#: bits flipped in each pooled descriptor, so that 100k items do not repeat the pool's words
POOL_FLIPS: Final = 16
#: seeds of the textured pictures: originals, unrelated queries, the descriptor pool
ORIGINAL_SEED: Final = 30_000_000
UNRELATED_SEED: Final = 31_000_000
POOL_SEED: Final = 32_000_000
SEARCHED: Final[tuple[GalleryName, ...]] = ("same_hq", "similar")
ADD_GALLERY: Final[GalleryName] = "same_hq"
FORM: Final = {"Content-Type": "application/x-www-form-urlencoded"}


def synthetic_thumbs(count: int, seed: int) -> Iterator[np.ndarray]:
    """``count`` distinct 32x32 RGB thumbnails: random 4x4 colour blocks plus a little noise."""
    rng = np.random.default_rng(seed)
    chunk = 2048
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        coarse = rng.integers(0, 256, (size, 4, 4, 3), dtype=np.uint8)
        thumbs = coarse.repeat(8, axis=1).repeat(8, axis=2)
        noise = rng.integers(0, 16, thumbs.shape, dtype=np.uint8)
        # saturating add: blocks near white keep their colour
        yield from np.minimum(thumbs.astype(np.uint16) + noise, 255).astype(np.uint8)


def keypoint_pool(count: int) -> LocalFeatures:
    """The keypoints of ``count`` textured pictures, all in one LocalFeatures."""
    found = []
    for seed in range(POOL_SEED, POOL_SEED + count):
        image = decode_image_bytes(textured_image(seed))
        assert image.grey is not None
        features = local_features_of(image.grey)
        if features is not None:
            found.append(features)
    return LocalFeatures(
        width=found[0].width,
        height=found[0].height,
        points=np.concatenate([f.points for f in found]),
        geometry=np.concatenate([f.geometry for f in found]),
        descriptors=np.concatenate([f.descriptors for f in found]),
        thumb=found[0].thumb,
    )


def synthetic_keypoints(pool: LocalFeatures, rng: np.random.Generator) -> LocalFeatures:
    """Keypoints of a made-up picture: 256 descriptors of the pool, POOL_FLIPS bits of
    each flipped."""
    count = 256
    chosen = rng.integers(0, len(pool), count)
    descriptors = pool.descriptors[chosen].copy()
    rows = np.repeat(np.arange(count), POOL_FLIPS)
    flips = np.left_shift(np.uint8(1), rng.integers(0, 8, rows.size).astype(np.uint8))
    descriptors[rows, rng.integers(0, 32, rows.size)] ^= flips
    return LocalFeatures(
        width=512,
        height=384,
        points=(rng.random((count, 2)) * (512, 384)).astype(np.float32),
        geometry=pool.geometry[chosen].copy(),
        descriptors=descriptors,
        thumb=rng.integers(0, 256, (CHECK_SIDE, CHECK_SIDE), dtype=np.uint8),
    )


def synthetic_fingerprint(thumb: np.ndarray) -> Fingerprint:
    """The fingerprint of a 320x240 picture whose thumbnail is ``thumb``."""
    grey = cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY)
    grown = cv2.resize(grey, (FINE_SIDE, FINE_SIDE), interpolation=cv2.INTER_LINEAR)
    return Fingerprint(320, 240, np.asarray(grown, dtype=np.uint8))


def populate(
    data: Path, items: int, probes: Sequence[bytes], originals: Sequence[bytes]
) -> tuple[list[str], list[str]]:
    """Store ``items`` items in each searched gallery: the ``probes``, the ``originals``
    (with their keypoints in same_hq), and synthetic items for the rest.

    Returns the cont_signs of the probes and of the originals, as the gallery computes them.
    """
    entries: list[IndexEntry] = []
    local: dict[str, LocalFeatures] = {}
    fingerprints: dict[str, Fingerprint] = {}
    probe_signs = []
    original_signs = []
    for n, raw in enumerate([*probes, *originals]):
        image = decode_image_bytes(raw)
        brief = json.dumps({"path": f"probes/p{n:04d}.jpg"})
        entries.append(IndexEntry(image.cont_sign, brief, 0, 0, features_of(image.thumb)))
        fingerprints[image.cont_sign] = fingerprint_of(image)
        if n < len(probes):
            probe_signs.append(image.cont_sign)
            continue
        original_signs.append(image.cont_sign)
        assert image.grey is not None
        features = local_features_of(image.grey)
        if features is not None:
            local[image.cont_sign] = features
    pool = keypoint_pool(min(POOL_PICTURES, items // 10))
    rng = np.random.default_rng(11)
    for n, thumb in enumerate(synthetic_thumbs(items - len(entries), seed=7)):
        # the high half is never a probe's: those come from a hash of decoded pixels
        sign = f"{4_000_000_000 + n // 1_000_000},{n % 1_000_000}"
        brief = json.dumps({"path": f"photos/{n // 1000:03d}/img_{n:07d}.jpg"})
        entries.append(IndexEntry(sign, brief, 0, 0, features_of(thumb)))
        fingerprints[sign] = synthetic_fingerprint(thumb)
    store = GalleryStore(data)
    kept = FingerprintStore(store.path)
    try:
        now = time.time()
        for gallery in SEARCHED:
            for entry in entries:
                keypoints = None
                if gallery == "same_hq":
                    keypoints = local.get(entry.cont_sign) or synthetic_keypoints(pool, rng)
                kept.insert(gallery, entry.cont_sign, fingerprints[entry.cont_sign])
                store.insert(gallery, entry, now, keypoints)
    finally:
        kept.close()
        store.close()
    return probe_signs, original_signs


def same_image_searches(
    url: str, token: str, queries: Sequence[bytes], expected: Sequence[str | None]
) -> tuple[list[float], int, int]:
    """(seconds of each search, queries whose first hit is the expected item, queries
    expecting nothing that found something) of sequential same_hq searches."""
    path = f"{url}{GALLERIES['same_hq'].path('search')}?access_token={token}"
    latencies = []
    found = false_hits = 0
    with requests.Session() as session:
        for raw, sign in zip(queries, expected, strict=True):
            body = urlencode({"image": base64.b64encode(raw).decode("ascii")})
            with timed() as clock:
                answer = session.post(path, data=body, headers=FORM, timeout=60)
                answer.raise_for_status()
                result = answer.json()
            if "error_code" in result:
                raise RuntimeError(f"same_hq search refused: {result}")
            latencies.append(clock.seconds)
            hits = [hit["cont_sign"] for hit in result["result"]]
            if sign is None:
                false_hits += bool(hits)
            elif hits and hits[0] == sign:
                found += 1
    return latencies, found, false_hits


def bare_sqlite_read(data: Path) -> float:
    """Seconds to read every stored item row with sqlite3 alone (no index build)."""
    with timed() as clock:
        db = sqlite3.connect(data / DB_NAME)
        try:
            for gallery in SEARCHED:
                db.execute(
                    "SELECT cont_sign, brief, tag1, tag2, phash, colours, vector, deleted_at"
                    " FROM items WHERE gallery = ?",
                    (gallery,),
                ).fetchall()
        finally:
            db.close()
    return clock.seconds


def start_once(data: Path, conn: Connection) -> None:
    """Child process: start a gallery over ``data``, send (seconds of ``start()``, peak
    RSS bytes at start), check it answers, stop it (it saves its index as any stop)."""
    server = GalleryServer(data, api_key=API_KEY, secret_key=SECRET_KEY)
    with timed() as clock:
        server.start()
    conn.send((clock.seconds, peak_rss_bytes(os.getpid())))
    requests.get(f"{server.url}/_syncd/health", timeout=30).raise_for_status()
    server.stop()


def start_seconds(data: Path) -> tuple[float, int]:
    """(wall time of ``GalleryServer.start()`` over the stored data, seconds; peak RSS
    of its process at start, bytes), in a fresh process as after a real restart."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=start_once, args=(data, child), daemon=True)
    process.start()
    try:
        if not parent.poll(300):
            raise RuntimeError("the gallery process did not start")
        seconds, rss = parent.recv()
    finally:
        process.join(120)
        if process.is_alive():
            process.terminate()
    return float(seconds), int(rss)


def search_latencies(
    url: str,
    token: str,
    gallery: GalleryName,
    probes: Sequence[bytes],
    signs: Sequence[str],
    count: int,
) -> list[float]:
    """Seconds of each of ``count`` sequential searches (after a short warm-up)."""
    path = f"{url}{GALLERIES[gallery].path('search')}?access_token={token}"
    bodies = [urlencode({"image": base64.b64encode(raw).decode("ascii")}) for raw in probes]
    latencies = []
    with requests.Session() as session:
        for n in range(-3, count):
            body, sign = bodies[n % len(bodies)], signs[n % len(signs)]
            with timed() as clock:
                answer = session.post(path, data=body, headers=FORM, timeout=60)
                answer.raise_for_status()
                found = answer.json()
            if "error_code" in found:
                raise RuntimeError(f"{gallery} search refused: {found}")
            if found["result"][0]["cont_sign"] != sign:
                raise RuntimeError(f"{gallery} search did not find the probe first: {found}")
            if n >= 0:
                latencies.append(clock.seconds)
    return latencies


class FixedAnswerServer:
    """A WSGI app on the gallery's waitress set-up (syncd.serving, the gallery's limits)
    that answers every request alike.

    It reads the whole body (waitress has buffered it already) and answers a fixed
    JSON add result: the cost of the HTTP stack alone.
    """

    _ANSWER: Final = json.dumps({"log_id": 1234567890, "cont_sign": "1,2"}).encode()

    def __init__(self, threads: int = THREADS) -> None:
        self._server = WaitressServer(
            self._app,
            host="127.0.0.1",
            port=0,
            name="syncd-gallery",
            threads=threads,
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=CHANNEL_TIMEOUT,
            cleanup_interval=max(1, CHANNEL_TIMEOUT // 6),
            max_request_body_size=MAX_BODY_BYTES + 1024 * 1024,
        )
        self.url = self._server.url

    def _app(
        self, environ: dict[str, object], start_response: Callable[..., object]
    ) -> list[bytes]:
        stream = environ["wsgi.input"]
        stream.read(int(str(environ.get("CONTENT_LENGTH") or 0)))  # type: ignore[attr-defined]
        start_response(
            "200 OK",
            [("Content-Type", "application/json;charset=utf-8"),
             ("Content-Length", str(len(self._ANSWER)))],
        )  # fmt: skip
        return [self._ANSWER]

    def __enter__(self) -> FixedAnswerServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def serve_both(data: Path, conn: Connection) -> None:
    """Child process: the gallery over ``data`` and a FixedAnswerServer until told to stop."""
    server = GalleryServer(data, api_key=API_KEY, secret_key=SECRET_KEY)
    server.start()
    try:
        with FixedAnswerServer() as fixed:
            conn.send((server.url, fixed.url))
            conn.recv()
    finally:
        server.stop()


@contextmanager
def servers_process(data: Path) -> Iterator[tuple[str, str, int]]:
    """(gallery url, fixed-answer url, pid) of both servers, run in a child process so
    the benchmark's clients do not share the servers' interpreter lock."""
    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=serve_both, args=(data, child), daemon=True
    )
    process.start()
    try:
        if not parent.poll(300):
            raise RuntimeError("the gallery process did not start")
        gallery_url, fixed_url = parent.recv()
        assert process.pid is not None
        yield gallery_url, fixed_url, process.pid
    finally:
        parent.send("stop")
        process.join(30)
        if process.is_alive():
            process.terminate()


def post_all(url: str, bodies: Iterable[str], clients: int) -> float:
    """Seconds for ``clients`` threads, a session each, to post every body to ``url``."""
    lock = threading.Lock()
    queue = iter(bodies)
    failures: list[str] = []

    def client() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    body = next(queue, None)
                if body is None:
                    return
                answer = session.post(url, data=body, headers=FORM, timeout=60).json()
                if "error_code" in answer:
                    failures.append(str(answer))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    with timed() as clock:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} adds failed, e.g. {failures[0]}")
    return clock.seconds


def add_throughputs(
    gallery_url: str, fixed_url: str, token: str, bodies: Sequence[str], rounds: int, clients: int
) -> tuple[float, float]:
    """(gallery adds/s, fixed-answer server adds/s) over the same bodies, side by side."""
    path = f"{GALLERIES[ADD_GALLERY].path('add')}?access_token={token}"
    chunk = len(bodies) // rounds
    gallery_time = fixed_time = 0.0
    post_all(fixed_url + path, bodies[: clients * 4], clients)  # warm-up
    for r in range(rounds):
        part = bodies[r * chunk : (r + 1) * chunk]
        fixed_time += post_all(fixed_url + path, part, clients)
        gallery_time += post_all(gallery_url + path, part, clients)
    added = chunk * rounds
    return added / gallery_time, added / fixed_time


def add_bodies(count: int, first_seed: int, textured: bool = False) -> list[str]:
    """Form bodies of ``count`` distinct adds: 64x64 JPEGs, as syncd's ingest bench sends,
    or (``textured``) 320x240 textured JPEGs, which keep keypoints."""
    return [
        urlencode(
            {
                "image": base64.b64encode(
                    textured_image(seed) if textured else make_image(seed, (64, 64))
                ).decode("ascii"),
                "brief": json.dumps({"path": f"new/img_{seed:07d}.jpg"}),
            }
        )
        for seed in range(first_seed, first_seed + count)
    ]


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--items", type=int, help="items per gallery (100000; --quick 10000)")
    parser.add_argument("--searches", type=int, help="searches per gallery (300; --quick 100)")
    parser.add_argument("--adds", type=int, help="add calls per server (2000; --quick 800)")
    parser.add_argument("--probes", type=int, default=20, help="distinct search images")
    parser.add_argument(
        "--originals", type=int, help="pictures whose crops are searched (200; --quick 100)"
    )
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="add client threads")
    args = parser.parse_args()
    items = args.items or (10_000 if args.quick else 100_000)
    searches = args.searches or (100 if args.quick else 300)
    adds = args.adds or (800 if args.quick else 2000)
    restarts = 2 if args.quick else args.restarts

    originals_count = args.originals or (100 if args.quick else 200)
    probes = [make_image(10_000_000 + n, (320, 240)) for n in range(args.probes)]
    originals = [textured_image(ORIGINAL_SEED + n) for n in range(originals_count)]
    crops = [crop_copy(ORIGINAL_SEED + n) for n in range(originals_count)]
    unrelated = [textured_image(UNRELATED_SEED + n) for n in range(originals_count)]
    bodies = add_bodies(adds, first_seed=20_000_000)
    textured_bodies = add_bodies(adds // 4, first_seed=33_000_000, textured=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="syncd-bench-gallery-") as tmp:
        data = Path(tmp)
        with timed() as clock:
            signs, original_signs = populate(data, items, probes, originals)
        print(f"populated {items} items in each of {', '.join(SEARCHED)} in {clock.seconds:.1f} s")

        sqlite_read = bare_sqlite_read(data)
        # the first start has no saved keypoint index (as after an upgrade): it builds it
        first, first_rss = start_seconds(data)
        starts = [start_seconds(data) for _ in range(restarts)]
        restart, restart_rss = min(starts)[0], max(rss for _, rss in starts)
        stored = items * len(SEARCHED)
        print(
            f"first start with {stored} items (index built from the store): {first:.2f} s, "
            f"peak RSS {first_rss / 2**20:.0f} MiB"
        )
        print(
            f"restart with {stored} items: {restart:.2f} s (best of {restarts}), "
            f"peak RSS {restart_rss / 2**20:.0f} MiB; "
            f"bare SQLite read of the rows: {sqlite_read:.2f} s ({restart / sqlite_read:.1f}x)"
        )
        results.append(
            Result.at_most(
                f"restart, {stored // 1000}k items", restart, "s", RESTART_SECONDS_PER_ITEM * stored
            )
        )

        with servers_process(data) as (gallery_url, fixed_url, pid):
            token = access_token(gallery_url)
            for gallery in SEARCHED:
                latencies = search_latencies(gallery_url, token, gallery, probes, signs, searches)
                median, p99 = statistics.median(latencies), percentile(latencies, 99)
                print(
                    f"{gallery} search, {items} items: median {median * 1000:.1f} ms, "
                    f"p99 {p99 * 1000:.1f} ms over {len(latencies)} searches"
                )
                results.append(
                    Result.at_most(
                        f"{gallery} search p99, {items // 1000}k items", p99, "s", SEARCH_P99_TARGET
                    )
                )
            latencies, found, false_hits = same_image_searches(
                gallery_url,
                token,
                [*crops, *unrelated],
                [*original_signs, *([None] * len(unrelated))],
            )
            median, p99 = statistics.median(latencies), percentile(latencies, 99)
            recall = found / len(crops)
            print(
                f"same_hq partial copies, {items} items: {found} of {len(crops)} crops "
                f"(75 % x 75 %, rescaled, JPEG) find their original first ({recall:.1%}); "
                f"{false_hits} of {len(unrelated)} unrelated pictures find anything; "
                f"search median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
            )
            results.append(Result.at_least("crop recall, same_hq", recall, "", CROP_RECALL_TARGET))
            results.append(
                Result.at_most("unrelated pictures with a hit, same_hq", false_hits, "", 0)
            )
            results.append(
                Result.at_most(
                    f"same_hq crop search p99, {items // 1000}k items", p99, "s", SEARCH_P99_TARGET
                )
            )
            gallery_rate, fixed_rate = add_throughputs(
                gallery_url, fixed_url, token, bodies, rounds=8, clients=args.clients
            )
            textured_rate, textured_fixed_rate = add_throughputs(
                gallery_url, fixed_url, token, textured_bodies, rounds=4, clients=args.clients
            )
            server_rss = peak_rss_bytes(pid)
    print(
        f"add over HTTP of 320x240 textured pictures (keypoints kept): {textured_rate:.0f}/s; "
        f"fixed-answer app: {textured_fixed_rate:.0f}/s (gallery ms per add "
        f"{1000 / textured_rate:.2f}, stack {1000 / textured_fixed_rate:.2f})"
    )
    ratio = gallery_rate / fixed_rate
    print(
        f"add over HTTP, {args.clients} clients, {ADD_GALLERY} of {items} items: "
        f"{gallery_rate:.0f}/s; fixed-answer app on the same stack: {fixed_rate:.0f}/s "
        f"(gallery ms per add {1000 / gallery_rate:.2f}, stack {1000 / fixed_rate:.2f})"
    )
    print(f"peak RSS of the server process: {server_rss / 2**20:.0f} MiB")
    results.append(
        Result.at_least("add throughput, gallery / fixed app", ratio, "x", ADD_RATIO_TARGET)
    )
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
