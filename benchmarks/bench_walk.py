"""Walk speed: ``walk_library`` over a generated tree against ``find -type f -printf``.

Run: ``.venv/bin/python benchmarks/bench_walk.py [--files 100000] [--root DIR]``.
Prints both times (best of ``--repeat``, warm cache), the ratio and the target: the whole
no-change ``reconcile`` must stay within 4x of find (SPEC §8), so the walk alone needs to
be well under that.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from syncd.config import LibraryConfig, WatchConfig
from syncd.scan.walk import FileEntry, WalkFilter, walk_library

TARGET_RATIO = 4.0


def make_tree(root: Path, files: int, per_dir: int = 100) -> None:
    """Create ``files`` small image-named files, ``per_dir`` to a directory, two levels deep."""
    for i in range(files):
        d = root / f"d{i // (per_dir * 100):03d}" / f"e{(i // per_dir) % 100:03d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"img_{i:07d}.jpg").write_bytes(b"x")


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """The shortest wall time of ``repeat`` calls of ``run``, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--root", type=Path, help="walk this tree instead of generating one")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    tmp = None
    root = args.root
    if root is None:
        tmp = tempfile.mkdtemp(prefix="syncd-bench-walk-")
        root = Path(tmp)
        t0 = time.perf_counter()
        make_tree(root, args.files)
        print(f"generated {args.files} files in {time.perf_counter() - t0:.1f} s")
    lib = LibraryConfig(name="bench", root=root, gallery="same_hq")
    flt = WalkFilter.for_library(lib, WatchConfig())
    try:
        count = 0

        def run_walk() -> None:
            nonlocal count
            count = sum(1 for e in walk_library(root, flt) if isinstance(e, FileEntry))

        def run_find() -> None:
            subprocess.run(
                ["find", os.fspath(root), "-type", "f", "-printf", "%s %T@ %i\n"],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        run_find()  # warm the cache
        t_find = best_of(args.repeat, run_find)
        t_walk = best_of(args.repeat, run_walk)
        ratio = t_walk / t_find
        print(f"find: {t_find:.3f} s   walk_library: {t_walk:.3f} s ({count} files)")
        print(f"ratio {ratio:.2f} (target for the whole reconcile: <= {TARGET_RATIO:.0f})")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
