"""Walk speed: ``walk_batches`` (the scan's hot path) and ``walk_library`` (one record per
file) over a generated tree against ``find -type f -printf``.

Run: ``.venv/bin/python benchmarks/bench_walk.py [--quick] [--files 100000] [--root DIR]``.
Prints the times (best of ``--repeat``, warm cache), the ratios and the target: the whole
no-change ``reconcile`` must stay within 4x of find (its target), so the walk alone needs to
be well under that (it runs beside the start-up of ``reconcile``, in a child process).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import Result, bench_parser, best_of, report, timed

from syncd.config import LibraryConfig, WatchConfig
from syncd.paths.filters import WalkFilter
from syncd.scan.walk import FileBatch, FileEntry, walk_batches, walk_library

TARGET_RATIO = 4.0


def make_tree(root: Path, files: int, per_dir: int = 100) -> None:
    """Create ``files`` small image-named files, ``per_dir`` to a directory, two levels deep."""
    for i in range(files):
        d = root / f"d{i // (per_dir * 100):03d}" / f"e{(i // per_dir) % 100:03d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"img_{i:07d}.jpg").write_bytes(b"x")


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--files", type=int, help="files to generate (100000; --quick 10000)")
    parser.add_argument("--root", type=Path, help="walk this tree instead of generating one")
    parser.add_argument("--repeat", type=int, help="best of this many runs (5; --quick 3)")
    args = parser.parse_args()
    files = args.files or (10_000 if args.quick else 100_000)
    repeat = args.repeat or (3 if args.quick else 5)

    tmp = None
    root = args.root
    if root is None:
        tmp = tempfile.mkdtemp(prefix="syncd-bench-walk-")
        root = Path(tmp)
        with timed() as clock:
            make_tree(root, files)
        print(f"generated {files} files in {clock.seconds:.1f} s")
    lib = LibraryConfig(name="bench", root=root, gallery="same_hq")
    flt = WalkFilter.for_library(lib, WatchConfig())
    try:
        count = 0

        def run_batches() -> None:
            nonlocal count
            count = sum(len(b.keys) for b in walk_batches(root, flt) if isinstance(b, FileBatch))

        def run_walk() -> None:
            sum(1 for e in walk_library(root, flt) if isinstance(e, FileEntry))

        def run_find() -> None:
            subprocess.run(
                ["find", os.fspath(root), "-type", "f", "-printf", "%s %T@ %i\n"],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        run_find()  # warm the cache
        t_find = best_of(run_find, repeat)
        t_batches = best_of(run_batches, repeat)
        t_walk = best_of(run_walk, repeat)
        print(
            f"find: {t_find:.3f} s   walk_batches: {t_batches:.3f} s   "
            f"walk_library: {t_walk:.3f} s ({count} files)"
        )
        print(f"target for the whole reconcile: <= {TARGET_RATIO:.0f} x find")
        report(
            [
                Result.at_most(
                    f"walk_batches / find, {count} files", t_batches / t_find, "x", TARGET_RATIO
                ),
                Result.at_most(
                    f"walk_library / find, {count} files", t_walk / t_find, "x", TARGET_RATIO
                ),
            ]
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
