"""Phone photos at the account's rate: preparing each on one core and on all, and syncing a
folder of them into the embedded gallery.

Run: ``.venv/bin/python benchmarks/bench_photos.py [--quick] [--before DIR]``.

The photographs are real (Debian's ``mate-backgrounds`` nature wallpapers, through
``devkit.photos``) made phone-size: cropped to 4:3, scaled up to 12 megapixels
(4032x3024) with a sensor's grain, saved as a phone does. Without the package the
benchmark prints why and reports nothing.

1. Preparation (``prepare_image``, what a sync worker does before an add), in a fresh
   process: JPEGs of 3.5-4 MB (quality 94, over the API's 3 MiB limit) and HEICs. One
   core: the photos one after the other, CPU seconds a photo (the process's, so
   libheif's own threads count). All cores: the same photos on as many threads as the
   sync engine runs workers (``api.concurrency`` 4 + 2 spare), photos a second, that
   rate over the one-thread rate (on a machine of N cores, up to N times), and the cores
   kept busy meanwhile (CPU time ÷ wall time: over 1 only if the decodes and encodes run
   at once, outside the interpreter lock; on a loaded machine, the share it got).
2. Sync: ``syncd reconcile`` of a folder of ``--photos`` phone photos (each a shot of its
   own: other framings of the 12 scenes) into the embedded gallery (``endpoint =
   "embedded"``, same_hq), half within the limit (quality 90, sent byte for byte: the
   gallery decodes 12 megapixels) and half over it (quality 94, prepared). ``qps`` is set
   high so that the account's rate is not what is measured: photos a second over the
   whole process (start to exit), its CPU seconds a photo (user and system, from
   ``wait4``: on a shared machine the figure that says what the cores could do, at most
   cores ÷ 10 for 10 photos a second) and its peak RSS.

``--before DIR`` (a checkout of an older commit, e.g. ``git worktree add /tmp/before
COMMIT``) runs both measurements with that checkout's ``syncd`` too, on the same files, and
prints the two side by side. Targets: <= 0.1 s of one core a photo; >= 10 photos/s
synced on this machine's cores; <= 400 MB.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Result, bench_parser, print_table, report

from devkit.photos import NO_PHOTOS, phone_heic, phone_jpeg, photo_sources

MB = 1_000_000
#: the sync engine's workers at the default api.concurrency (4) + its spare workers (2)
WORKERS = 6
SECONDS_PER_PHOTO = 0.1
PHOTOS_PER_SECOND = 10.0
PEAK_MB = 400.0
SYNCD = str(Path(sys.executable).with_name("syncd"))

#: a fresh process preparing the files named: CPU seconds a photo one after the other, and
#: photos a second on ``workers`` threads
_PREPARE = r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from syncd.scan.prepare import prepare_image

workers, files = int(sys.argv[1]), sys.argv[2:]
prepare_image(files[0])  # imports, plugins
cpu, wall = time.process_time(), time.perf_counter()
sizes = [prepare_image(name) for name in files]
cpu, one = time.process_time() - cpu, time.perf_counter() - wall
with ThreadPoolExecutor(workers) as pool:
    busy, wall = time.process_time(), time.perf_counter()
    list(pool.map(prepare_image, files * 2))
    busy, many = time.process_time() - busy, time.perf_counter() - wall
print(json.dumps({
    "cpu": cpu / len(files), "one": len(files) / one, "many": 2 * len(files) / many,
    "cores": busy / many,
    "size": "%dx%d, %d KB" % (sizes[0].width, sizes[0].height, len(sizes[0].data) // 1000),
}))
"""


def _make(job: tuple[str, int, Path]) -> str:
    """One photo file (run in a pool: making them takes seconds each)."""
    kind, index, path = job
    sources = photo_sources()
    source = sources[index % len(sources)]
    variant = index // len(sources)
    if kind == "heic":
        path.write_bytes(phone_heic(source, seed=index, variant=variant))
    else:
        quality = 94 if kind == "over" else 90
        path.write_bytes(phone_jpeg(source, seed=index, variant=variant, quality=quality))
    return path.name


def make_files(folder: Path, jpegs: int, heics: int, synced: int) -> dict[str, list[Path]]:
    """The prepared JPEGs (over the limit), HEICs and the library's photos, made in parallel
    (those already in ``folder`` are kept)."""
    prepare, library = folder / "prepare", folder / "site" / "library"
    prepare.mkdir(parents=True, exist_ok=True)
    library.mkdir(parents=True, exist_ok=True)
    jobs = [("over", i, prepare / f"IMG_{i:04d}.JPG") for i in range(jpegs)]
    jobs += [("heic", i, prepare / f"IMG_{i:04d}.HEIC") for i in range(heics)]
    jobs += [
        ("over" if i % 2 else "within", i, library / f"IMG_{1000 + i:04d}.JPG")
        for i in range(synced)
    ]
    with multiprocessing.Pool(os.cpu_count() or 1) as pool:
        pool.map(_make, [job for job in jobs if not job[2].exists()], chunksize=1)
    return {
        "jpeg": [path for kind, _, path in jobs if kind == "over" and path.parent == prepare],
        "heic": [path for kind, _, path in jobs if kind == "heic"],
    }


def env_of(checkout: Path | None) -> dict[str, str]:
    """The environment of a process running ``checkout``'s syncd (None: this one's)."""
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(checkout), env.get("PYTHONPATH")) if p)
    return env


def prepare_figures(files: list[Path], checkout: Path | None) -> dict[str, float | str]:
    """``_PREPARE``'s figures for ``files``, run by ``checkout``'s syncd (from another
    folder: ``python -c`` looks in its working folder first)."""
    done = subprocess.run(
        [sys.executable, "-c", _PREPARE, str(WORKERS), *map(str, files)],
        capture_output=True, text=True, env=env_of(checkout), check=False,
        cwd=files[0].parent,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"preparing failed: {done.stderr[-800:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(figures, dict)
    return figures


def sync_figures(site: Path, checkout: Path | None) -> tuple[float, float, float]:
    """``syncd reconcile`` of the library into a fresh embedded gallery: photos a second,
    CPU seconds a photo (the whole process's, user and system) and its peak RSS in MB."""
    photos = len(list((site / "library").iterdir()))
    state = site / "state"
    if state.exists():
        subprocess.run(["rm", "-rf", str(state)], check=True)
    config = site / "config.toml"
    config.write_text(
        '[api]\nendpoint = "embedded"\nqps = 1000\n[ledger]\npath = "./state/ledger.db"\n'
        '[[library]]\nname = "photos"\nroot = "./library"\ngallery = "same_hq"\n',
        encoding="utf-8",
    )
    started = time.perf_counter()
    with open(site / "reconcile.log", "wb") as log:
        child = subprocess.Popen(
            [SYNCD, "reconcile", "-c", str(config)],
            cwd=site, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env_of(checkout),
        )  # fmt: skip
        # wait4's account of the child: its exit, CPU time and peak RSS (as wait_peak_rss)
        _, status, usage = os.wait4(child.pid, 0)
        code = child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    tail = (site / "reconcile.log").read_text(errors="replace").strip().splitlines()[-3:]
    print(f"  syncd reconcile exited {code} after {seconds:.1f} s: " + " | ".join(tail))
    if code != 0:
        raise RuntimeError(f"syncd reconcile exited {code}")
    cpu = (usage.ru_utime + usage.ru_stime) / photos
    return photos / seconds, cpu, usage.ru_maxrss * 1024 / MB


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--photos", type=int, help="photos in the synced folder (120; quick 40)")
    parser.add_argument("--before", type=Path, help="another checkout to measure beside this one")
    parser.add_argument(
        "--files", type=Path, help="a folder to keep the photos in for the next run"
    )
    args = parser.parse_args()
    if not photo_sources():
        print(f"bench_photos: {NO_PHOTOS}")
        return
    photos = args.photos or (40 if args.quick else 120)
    jpegs, heics = (6, 2) if args.quick else (12, 4)
    runs: list[tuple[str, Path | None]] = [("after", None)]
    if args.before is not None:
        runs.insert(0, ("before", args.before.resolve()))
    with tempfile.TemporaryDirectory(prefix="bench-photos-") as tmp:
        folder = args.files.resolve() if args.files else Path(tmp)
        started = time.perf_counter()
        files = make_files(folder, jpegs, heics, photos)
        print(f"{jpegs} JPEGs, {heics} HEICs and a library of {photos} photos made "
              f"in {time.perf_counter() - started:.0f} s")  # fmt: skip
        figures: dict[str, dict[str, float]] = {}
        rows: list[list[str]] = []
        for label, checkout in runs:
            jpeg = prepare_figures(files["jpeg"], checkout)
            heic = prepare_figures(files["heic"], checkout)
            rate, sync_cpu, peak = sync_figures(folder / "site", checkout)
            figures[label] = {
                "jpeg_cpu": float(jpeg["cpu"]), "jpeg_many": float(jpeg["many"]),
                "jpeg_speedup": float(jpeg["many"]) / float(jpeg["one"]),
                "jpeg_cores": float(jpeg["cores"]),
                "heic_cpu": float(heic["cpu"]), "heic_many": float(heic["many"]),
                "heic_speedup": float(heic["many"]) / float(heic["one"]),
                "rate": rate, "sync_cpu": sync_cpu, "peak": peak,
            }  # fmt: skip
            f = figures[label]
            rows.append([
                label, f"{f['jpeg_cpu']:.3f} s ({jpeg['size']})",
                f"{f['jpeg_many']:.1f}/s ({f['jpeg_speedup']:.2f}x, {f['jpeg_cores']:.2f} cores busy)",
                f"{f['heic_cpu']:.3f} s ({heic['size']})",
                f"{f['heic_many']:.1f}/s ({f['heic_speedup']:.2f}x)",
                f"{rate:.1f}/s", f"{sync_cpu:.3f} s", f"{peak:.0f} MB",
            ])  # fmt: skip
    print_table(
        ["run", "JPEG: CPU a photo", f"JPEG: {WORKERS} threads", "HEIC: CPU a photo",
         f"HEIC: {WORKERS} threads", "sync", "sync: CPU a photo", "sync peak RSS"],
        rows,
    )  # fmt: skip
    after = figures["after"]
    cores = float(os.cpu_count() or 1)
    report([
        Result.at_most("prepare: 12 MP JPEG over the limit, CPU a photo", round(after["jpeg_cpu"], 3),
                       "s", SECONDS_PER_PHOTO),
        Result.at_most("prepare: 12 MP HEIC, CPU a photo", round(after["heic_cpu"], 3), "s",
                       SECONDS_PER_PHOTO),
        Result.at_least(f"prepare: JPEG on {WORKERS} threads ÷ one thread",
                        round(after["jpeg_speedup"], 2), "x", round(0.8 * cores, 2)),
        Result.at_least("sync: embedded gallery, photos a second", round(after["rate"], 1), "/s",
                        PHOTOS_PER_SECOND),
        # what this machine's cores could sync when nothing else runs on them
        Result.at_most("sync: CPU a photo (whole process)", round(after["sync_cpu"], 3), "s",
                       round(cores / PHOTOS_PER_SECOND, 3)),
        Result.at_most("sync: syncd reconcile peak RSS", round(after["peak"]), "MB", PEAK_MB),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
