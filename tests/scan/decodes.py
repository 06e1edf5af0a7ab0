"""Decoding images in a fresh Python process: what each decode gave, and the process's peak
memory (VmHWM) against its memory once everything was imported.

``run_decodes([("prepare", path), ("thumbnail", path), ("gallery", path), ...])`` runs
each job in turn, or all at once on threads with ``together=True``. The jobs are the
paths that decode an image: ``prepare`` (scan preparation, as ``syncd search`` and the
console's search upload use it), ``thumbnail`` (the console's), ``gallery`` (the local
gallery's decode) and ``gallery-http`` (an add to a local gallery server started in that
process, over loopback). A fresh process is measured, not the test runner: its peak
counts only these decodes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_CHILD = r"""
import io, json, os, sys, tempfile, threading

def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

from PIL import Image
from syncd.api.baidu.client import ImageSearchClient
from syncd.console.thumbs import NoThumbnail, make_thumbnail
from syncd.errors import ApiError
from syncd.gallery.images import decode_image_bytes
from syncd.gallery.server import GalleryServer
from syncd.imaging import readable_formats
from syncd.scan.prepare import ImageRejected, prepare_image

readable_formats()
jobs, together = json.loads(sys.argv[1]), sys.argv[2] == "together"
server = None
if any(kind == "gallery-http" for kind, _ in jobs):
    server = GalleryServer(
        __import__("pathlib").Path(tempfile.mkdtemp()), api_key="ak", secret_key="sk", threads=8
    )
    server.start()
    ImageSearchClient(server.url, api_key="ak", secret_key="sk").check()
# warm up what every decode uses once, so the baseline holds it
small = io.BytesIO()
Image.new("RGB", (64, 48), (9, 9, 9)).save(small, "PNG")
decode_image_bytes(small.getvalue())
base = peak()

def middle(image):
    pixel = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    return list(pixel)

def run(kind, path):
    out = {"job": kind, "file": os.path.basename(path), "ok": False}
    try:
        if kind == "prepare":
            prepared = prepare_image(path)
            with Image.open(io.BytesIO(prepared.data)) as image:
                out.update(ok=True, size=list(image.size), format=prepared.format,
                           pixel=middle(image))
        elif kind == "thumbnail":
            with Image.open(io.BytesIO(make_thumbnail(os.open(path, os.O_RDONLY)))) as image:
                out.update(ok=True, size=list(image.size), pixel=middle(image))
        elif kind == "gallery":
            decoded = decode_image_bytes(open(path, "rb").read())
            out.update(ok=True, size=[decoded.width, decoded.height])
        else:
            with ImageSearchClient(server.url, api_key="ak", secret_key="sk") as client:
                added = client.add("same_hq", image=open(path, "rb").read(), brief=out["file"])
            out.update(ok=True, sign=added.cont_sign)
    except (ImageRejected, NoThumbnail) as exc:
        out["refused"] = str(exc)
    except ApiError as exc:
        out.update(refused=exc.message, code=exc.code)
    return out

if together:
    results = [None] * len(jobs)
    start = threading.Barrier(len(jobs))
    def one(index, kind, path):
        start.wait()
        results[index] = run(kind, path)
    threads = [threading.Thread(target=one, args=(i, *job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
else:
    results = [run(kind, path) for kind, path in jobs]
if server is not None:
    server.stop()
print(json.dumps({"base": base, "peak": peak(), "results": results}))
"""


@dataclass(frozen=True)
class Outcome:
    """What one decode gave: a result (``size``, the middle ``pixel`` in RGB for images
    made) or the one-line ``refused`` reason (``code``: the gallery's error code)."""

    job: str
    file: str
    ok: bool
    size: tuple[int, int] | None = None
    pixel: tuple[int, int, int] | None = None
    refused: str | None = None
    code: int | None = None


@dataclass(frozen=True)
class Report:
    """The outcomes, in the order of the jobs, and the process's memory: ``base`` once
    everything was imported, ``peak`` at its highest (bytes)."""

    outcomes: list[Outcome]
    base: int
    peak: int

    @property
    def extra(self) -> int:
        """Peak memory the decodes added, bytes."""
        return self.peak - self.base


def run_decodes(jobs: list[tuple[str, Path]], *, together: bool = False) -> Report:
    """Run ``jobs`` (kind, image path) in a fresh Python process (module docstring)."""
    spec = json.dumps([(kind, os.fspath(path)) for kind, path in jobs])
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, spec, "together" if together else "each"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout.strip().splitlines()[-1])
    outcomes = []
    for item in data["results"]:
        outcomes.append(
            Outcome(
                job=item["job"],
                file=item["file"],
                ok=item["ok"],
                size=tuple(item["size"]) if "size" in item else None,
                pixel=tuple(item["pixel"]) if "pixel" in item else None,
                refused=item.get("refused"),
                code=item.get("code"),
            )
        )
    return Report(outcomes, data["base"], data["peak"])


__all__ = ["Outcome", "Report", "run_decodes"]
