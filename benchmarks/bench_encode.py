"""Form encoding cost of a large image against the time to upload it to a local gallery.

Run: ``.venv/bin/python benchmarks/bench_encode.py [--quick] [--repeat 10]``.
Prints, for a ~3 MiB image: the client's body encoding (base64 plus three byte
replaces), ``urllib.parse.urlencode`` of the same form for comparison, one client
search call carrying it to a local gallery server on loopback, and a bare
``requests.Session`` post of the pre-encoded body. Encoding should be a small share of
an upload, so the client adds little over a bare session (the ingest target: ≥ 0.9x).
"""

from __future__ import annotations

import base64
import io
import urllib.parse

import numpy as np
import requests
from _common import (
    API_KEY,
    SECRET_KEY,
    Result,
    access_token,
    bench_parser,
    best_of,
    report,
    running_gallery,
)
from PIL import Image

from syncd.api.baidu.client import ImageSearchClient
from syncd.api.baidu.galleries import GALLERIES
from syncd.api.baidu.params import FORM_CONTENT_TYPE, CallParams, encode_form

TARGET_RATIO = 0.9


def noisy_png(side: int = 1000, seed: int = 1) -> bytes:
    """A PNG of random pixels (incompressible): about 3 bytes per pixel."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "PNG", compress_level=1)
    return out.getvalue()


def main() -> None:
    parser = bench_parser(__doc__)
    # --quick changes nothing: ten runs take seconds, and fewer are too noisy to compare
    parser.add_argument("--repeat", type=int, default=10, help="best of this many runs")
    args = parser.parse_args()
    repeat = args.repeat

    image = noisy_png()
    params = CallParams("search", (), image)
    print(
        f"image: {len(image) / 2**20:.2f} MiB, base64 {len(base64.b64encode(image)) / 2**20:.2f} MiB"
    )

    encode = best_of(lambda: encode_form(params), repeat)
    generic = best_of(
        lambda: urllib.parse.urlencode({"image": base64.b64encode(image).decode("ascii")}),
        repeat,
    )
    print(f"encode_form:              {encode * 1000:8.2f} ms")
    print(f"urllib.parse.urlencode:   {generic * 1000:8.2f} ms  ({generic / encode:.1f}x slower)")

    with (
        running_gallery() as server,
        ImageSearchClient(server.url, api_key=API_KEY, secret_key=SECRET_KEY) as client,
    ):
        client.check()
        upload = best_of(lambda: client.search("same_hq", image=image), repeat)
        body = encode_form(params)
        token = access_token(server.url)
        url = f"{server.url}{GALLERIES['same_hq'].path('search')}"
        with requests.Session() as bare:
            raw = best_of(
                lambda: bare.post(
                    url,
                    params={"access_token": token},
                    data=body,
                    headers={"Content-Type": FORM_CONTENT_TYPE},
                    timeout=30,
                ).raise_for_status(),
                repeat,
            )
    print(f"client.search (upload):   {upload * 1000:8.2f} ms  (encoding is {encode / upload:.0%})")
    print(
        f"bare Session post:        {raw * 1000:8.2f} ms  (client/bare ratio {raw / upload:.2f}, "
        f"target >= {TARGET_RATIO})"
    )
    report(
        [Result.at_least("search upload, client / bare Session", raw / upload, "x", TARGET_RATIO)]
    )


if __name__ == "__main__":
    main()
