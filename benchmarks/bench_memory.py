"""Peak memory decoding hostile images: each kind of file in a fresh process, then the
whole service syncing bombs while the console's search takes bomb uploads.

Run: ``.venv/bin/python benchmarks/bench_memory.py [--quick]``.

Per kind of file (a 171 KB palette PNG of 16000x11000 px, a 1-bit and a 16-bit PNG bomb,
a multi-frame GIF, APNG, TIFF and WebP, a phone HEIC of 24 megapixels, a progressive CMYK JPEG,
an EXIF-rotated TIFF, and an ordinary 12-megapixel photo): the peak resident memory
(VmHWM) of a fresh Python process that prepares it for the gallery, makes its console
thumbnail and decodes it as the local gallery does, one after the other. Then the whole
service: ``syncd run`` on the embedded gallery, its console on loopback without a
password, syncs a folder of six bombs and ordinary photos while five search uploads of
bombs are posted to the console's /api/search at once; its VmHWM once all is answered
and synced. Target: <= 400 MB each (a NAS with 2 GB of RAM runs more than syncd).

To measure another checkout (the commit before a change, say), run this script with
``PYTHONPATH`` naming that checkout: every process it starts then runs that syncd. The
files are made by ``devkit/corpus.py``: that checkout's when it has one, else this one's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests
from _common import Result, bench_parser, free_port, peak_rss_bytes, report

TARGET_MB = 400.0
MB = 1_000_000
#: the six bombs dropped into the library, and the five posted to the console at once
LIBRARY_BOMBS = (
    "palette-bomb.png", "bilevel-bomb.png", "gray16-bomb.png", "frames-bomb.gif",
    "frames-bomb.png", "rotated-bomb.tiff",
)  # fmt: skip
UPLOADED_BOMBS = (
    "palette-bomb.png", "bilevel-bomb.png", "frames-bomb.gif", "gray16-bomb.png",
    "frames-bomb.png",
)  # fmt: skip

#: one fresh process: prepare, thumbnail and gallery decode of one file; its peak memory
_CHILD = r"""
import io, json, os, sys

def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

from PIL import Image
from syncd.console.thumbs import NoThumbnail, make_thumbnail
from syncd.errors import ApiError
from syncd.gallery.images import decode_image_bytes
from syncd.scan.prepare import ImageRejected, prepare_image

path = sys.argv[1]
outcomes = []
for name, call in (
    ("prepare", lambda: "%dx%d" % (lambda p: (p.width, p.height))(prepare_image(path))),
    ("thumbnail", lambda: "%d bytes" % len(make_thumbnail(os.open(path, os.O_RDONLY)))),
    ("gallery", lambda: "%dx%d" % (lambda d: (d.width, d.height))(
        decode_image_bytes(open(path, "rb").read()))),
):
    try:
        outcomes.append(f"{name} {call()}")
    except (ImageRejected, NoThumbnail, ApiError) as exc:
        outcomes.append(f"{name} refused: {exc}")
print(json.dumps({"peak": peak(), "outcomes": outcomes}))
"""


def write_files(folder: Path, quick: bool) -> dict[str, Path]:
    """The hostile files (and an ordinary photo) by kind, written into ``folder``."""
    import numpy as np
    from PIL import Image

    from devkit.corpus import BOMBS, picture

    def photo() -> bytes:
        # a camera-like 12-megapixel JPEG: over 3 MiB, so it is re-encoded, not sent as is
        pixels = np.asarray(picture(41, (4000, 3000)), dtype=np.int16)
        noise = np.random.default_rng(41).normal(0, 6, pixels.shape).astype(np.int16)
        grainy = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")
        return _encoded(grainy, "JPEG", quality=95)

    def heic() -> bytes:
        import pillow_heif

        pillow_heif.register_heif_opener()
        size = (4032, 3024) if quick else (5712, 4284)  # 12 and 24 megapixels, as phones
        return _encoded(picture(42, size), "HEIF", quality=80)

    kinds: dict[str, tuple[str, Callable[[], bytes]]] = {
        "palette PNG 16000x11000": ("palette-bomb.png", BOMBS["palette-bomb.png"]),
        "1-bit PNG 16000x11000": ("bilevel-bomb.png", BOMBS["bilevel-bomb.png"]),
        "16-bit PNG 10000x10000": ("gray16-bomb.png", BOMBS["gray16-bomb.png"]),
        "GIF 3 frames 16000x11000": ("frames-bomb.gif", BOMBS["frames-bomb.gif"]),
        "APNG 3 frames 7000x5000 RGBA": ("frames-bomb.png", BOMBS["frames-bomb.png"]),
        "TIFF 3 pages 8000x6000": ("pages-bomb.tiff", BOMBS["pages-bomb.tiff"]),
        "WebP 2 frames 5000x4000": ("frames-bomb.webp", BOMBS["frames-bomb.webp"]),
        "HEIC phone photo": ("phone.heic", heic),
        "CMYK progressive JPEG 5000x4000": ("cmyk-bomb.jpg", BOMBS["cmyk-bomb.jpg"]),
        "EXIF-rotated TIFF 6000x4000": ("rotated-bomb.tiff", BOMBS["rotated-bomb.tiff"]),
        "12 MP photo (JPEG)": ("photo.jpg", photo),
    }
    paths = {}
    for kind, (name, build) in kinds.items():
        path = folder / name
        if not path.exists():
            path.write_bytes(build())
        paths[kind] = path
    return paths


def _encoded(image: object, fmt: str, **params: object) -> bytes:
    import io

    out = io.BytesIO()
    image.save(out, fmt, **params)  # type: ignore[attr-defined]
    return out.getvalue()


def per_kind(paths: dict[str, Path]) -> list[Result]:
    """One fresh process per kind of file: its peak memory (module docstring)."""
    results = []
    for kind, path in paths.items():
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, os.fspath(path)],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=path.parent,  # not a checkout: its syncd would shadow $PYTHONPATH's
        )
        if done.returncode != 0:
            print(f"{kind}: the process failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        data = json.loads(done.stdout.strip().splitlines()[-1])
        peak = data["peak"] / MB
        size = path.stat().st_size
        print(f"{kind} ({size:,} bytes): peak {peak:.0f} MB; " + "; ".join(data["outcomes"]))
        results.append(Result.at_most(f"memory: {kind}", round(peak), "MB", TARGET_MB))
    return results


def whole_service(folder: Path, paths: dict[str, Path], quick: bool) -> Result | None:
    """``syncd run`` syncing bombs while five bomb uploads hit the console (docstring)."""
    from devkit.imagegen import make_image

    site = folder / "service"
    library = site / "library"
    library.mkdir(parents=True)
    by_name = {path.name: path for path in paths.values()}
    for name in LIBRARY_BOMBS:
        shutil.copyfile(by_name[name], library / name)
    shutil.copyfile(by_name["photo.jpg"], library / "photo.jpg")
    for seed in range(4 if quick else 12):
        (library / f"ordinary-{seed}.jpg").write_bytes(make_image(seed, size=(1600, 1200)))
    files = len(list(library.iterdir()))
    port = free_port()
    config = site / "config.toml"
    config.write_text(
        '[api]\nendpoint = "embedded"\n[ledger]\npath = "./state/ledger.db"\n'
        "[watch]\nsettle = 0.5\nrescan_interval = 0\n"
        f'[console]\nlisten = "127.0.0.1:{port}"\n'
        '[[library]]\nname = "photos"\nroot = "./library"\ngallery = "same_hq"\n',
        encoding="utf-8",
    )
    url = f"http://127.0.0.1:{port}"
    with open(site / "daemon.log", "wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "syncd.cli", "run", "-c", str(config)],
            cwd=site, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait(lambda: _answers(url), 120, "the console to answer")
        answers: list[str] = [""] * len(UPLOADED_BOMBS)

        def upload(index: int, name: str) -> None:
            data = by_name[name].read_bytes()
            try:
                reply = requests.post(
                    f"{url}/api/search", files={"image": (name, data)}, timeout=900
                )
                text = reply.json() if reply.status_code == 200 else reply.json().get("error")
                answers[index] = f"{name}: {reply.status_code} {str(text)[:100]}"
            except (requests.RequestException, ValueError) as exc:
                answers[index] = f"{name}: {type(exc).__name__}"

        uploads = [
            threading.Thread(target=upload, args=(index, name))
            for index, name in enumerate(UPLOADED_BOMBS)
        ]
        started = time.monotonic()
        for thread in uploads:
            thread.start()
        for thread in uploads:
            thread.join()
        print(f"five search uploads answered in {time.monotonic() - started:.0f} s:")
        for answer in answers:
            print(f"  {answer}")
        status = _wait(lambda: _synced(url, files), 1800, "the library to be synced")
        print(f"library synced: {status}")
        peak = peak_rss_bytes(daemon.pid) / MB
    except TimeoutError as exc:
        print(f"bench_memory: {exc}; the daemon's log is {site / 'daemon.log'}")
        return None
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=120)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    print(f"syncd run: peak {peak:.0f} MB")
    return Result.at_most("memory: whole service (syncd run + 5 uploads)", round(peak), "MB",
                          TARGET_MB)  # fmt: skip


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/api/status", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _synced(url: str, files: int) -> str:
    """'' while the library is still being synced; else its counts."""
    try:
        library = requests.get(f"{url}/api/status", timeout=30).json()["libraries"][0]
    except (requests.RequestException, ValueError, KeyError, IndexError):
        return ""
    done = library["files"] == files and not library["pending"]
    done = done and library["synced"] + library["failed"] == files
    return f"{library['synced']} synced, {library['failed']} failed" if done else ""


def _wait(check: Callable[[], object], seconds: float, what: str) -> object:
    """Poll ``check`` until it gives something true; TimeoutError after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {seconds:.0f} s for {what}")
        time.sleep(0.5)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--keep", type=Path, help="make (or reuse) the files in this folder")
    parser.add_argument("--only-kinds", action="store_true", help="skip the whole service")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-memory-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        paths = write_files(folder, args.quick)
        results = per_kind(paths)
        if not args.only_kinds:
            with tempfile.TemporaryDirectory(prefix="syncd-bench-service-") as service:
                whole = whole_service(Path(service), paths, args.quick)
            if whole is not None:
                results.append(whole)
    report(results)


if __name__ == "__main__":
    main()
