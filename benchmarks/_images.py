"""Libraries of test pictures for the benchmarks.

The pictures are ``devkit.imagegen``'s (shared with the tests: see ``devkit/__init__.py``),
imported inside the functions: ``run_all.py`` imports ``_common``, which imports this, and
a child's peak RSS counts the memory of the parent it was forked from. A benchmark that
needs single pictures imports ``from devkit.imagegen import make_image`` itself.
"""

from __future__ import annotations

from pathlib import Path


def write_images(
    root: Path, count: int, first_seed: int = 0, size: tuple[int, int] = (64, 64)
) -> None:
    """``count`` distinct JPEGs (seeds ``first_seed`` on) of ``size`` under ``root``:
    ``root/d000/img00000.jpg`` on, 100 to a folder."""
    from devkit.imagegen import make_image

    for n in range(count):
        folder = root / f"d{n // 100:03d}"
        if n % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img{n:05d}.jpg").write_bytes(make_image(first_seed + n, size=size))
