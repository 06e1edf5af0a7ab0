"""Form encoding cost of a large image against the time to upload it to a local gallery.

Run: ``.venv/bin/python benchmarks/bench_encode.py [--repeat 10]``.
Prints, for a ~3 MiB image: the client's body encoding (base64 plus three byte
replaces), ``urllib.parse.urlencode`` of the same form for comparison, one client
search call carrying it to a local gallery server on loopback, and a bare
``requests.Session`` post of the pre-encoded body. Encoding should be a small share of
an upload, so the client adds little over a bare session (SPEC §8: ingest ≥ 0.9x).
"""

from __future__ import annotations

import argparse
import base64
import io
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from syncd.api import CallParams, ImageSearchClient
from syncd.api.params import FORM_CONTENT_TYPE, encode_form
from syncd.gallery.server import GalleryServer
from syncd.protocol import GALLERIES

AK, SK = "bench-ak", "bench-sk"


def noisy_png(side: int = 1000, seed: int = 1) -> bytes:
    """A PNG of random pixels (incompressible): about 3 bytes per pixel."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "PNG", compress_level=1)
    return out.getvalue()


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """The shortest wall time of ``repeat`` calls of ``run``, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    image = noisy_png()
    params = CallParams("search", (), image)
    print(
        f"image: {len(image) / 2**20:.2f} MiB, base64 {len(base64.b64encode(image)) / 2**20:.2f} MiB"
    )

    encode = best_of(args.repeat, lambda: encode_form(params))
    generic = best_of(
        args.repeat,
        lambda: urllib.parse.urlencode({"image": base64.b64encode(image).decode("ascii")}),
    )
    print(f"encode_form:              {encode * 1000:8.2f} ms")
    print(f"urllib.parse.urlencode:   {generic * 1000:8.2f} ms  ({generic / encode:.1f}x slower)")

    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-encode-") as data,
        GalleryServer(Path(data), api_key=AK, secret_key=SK) as server,
        ImageSearchClient(server.url, api_key=AK, secret_key=SK) as client,
    ):
        client.check()
        upload = best_of(args.repeat, lambda: client.search("same_hq", image=image))
        body = encode_form(params)
        token_url = f"{server.url}/oauth/2.0/token"
        token = requests.post(
            token_url,
            params={"grant_type": "client_credentials", "client_id": AK, "client_secret": SK},
            timeout=10,
        ).json()["access_token"]
        url = f"{server.url}{GALLERIES['same_hq'].path('search')}"
        with requests.Session() as bare:
            raw = best_of(
                args.repeat,
                lambda: bare.post(
                    url,
                    params={"access_token": token},
                    data=body,
                    headers={"Content-Type": FORM_CONTENT_TYPE},
                    timeout=30,
                ).raise_for_status(),
            )
    print(f"client.search (upload):   {upload * 1000:8.2f} ms  (encoding is {encode / upload:.0%})")
    print(
        f"bare Session post:        {raw * 1000:8.2f} ms  (client/bare ratio {raw / upload:.2f}, "
        "target >= 0.9)"
    )


if __name__ == "__main__":
    main()
