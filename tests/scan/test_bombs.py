"""Hostile images, small on disk and huge decoded: scan preparation, console thumbnails and
the local gallery's decode each give a correct result or a one-line refusal, and a
process's memory stays within the decode budget, one decode at a time or five at once."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack

import pytest

from devkit.corpus import BOMBS, Corpus
from syncd.imaging import DECODE_BUDGET_BYTES, DecodeBudget, ImageRefused

from .decodes import Outcome, run_decodes

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/status"), reason="needs Linux /proc VmHWM"
)

MIB = 1024 * 1024
#: what a process may hold beyond the decode budget while decoding: the JPEG written,
#: the file read, Python's own objects (before the budget, one palette bomb took 1 GiB)
SLACK = 48 * MIB
#: what the thumbnail path refuses without decoding (over its own pixel limit)
TOO_MANY_PIXELS = "too many pixels to preview"
#: the refusal of a decode over the whole budget
OVER_BUDGET = re.compile(
    rf"decoding it needs (\d+) MiB, over the limit of {DECODE_BUDGET_BYTES // MIB} MiB$"
)

#: per hostile file: the size its prepared JPEG has and the colour of its middle (None:
#: refused, its decode over the budget), and what the console's thumbnail is: "shown",
#: "over" the budget, or refused as having "too many" pixels without decoding
EXPECTED: dict[str, tuple[tuple[int, int] | None, tuple[int, int, int] | None, str]] = {
    # the file: 171 KB, 16000x11000 px; 168 MiB decoded, and its RGB result beside
    "palette-bomb.png": (None, None, "too many"),
    "bilevel-bomb.png": ((4096, 2816), (0, 0, 0), "too many"),  # 1 byte a pixel too
    "gray16-bomb.png": (None, None, "over"),  # 10000x10000 px at 2 bytes a pixel
    "rgb16-bomb.png": (None, None, "over"),  # 8000x8000 RGB: 244 MiB as Pillow holds it
    "frames-bomb.gif": (None, None, "too many"),  # its first frame, as large as the palette PNG
    # the first frame only; it is fully transparent, so flattened onto white
    "frames-bomb.png": ((4096, 2926), (255, 255, 255), "shown"),
    "pages-bomb.tiff": (None, None, "over"),  # one strip a page: libtiff holds it all
    "frames-bomb.webp": (None, None, "over"),  # libwebp: 16 bytes a pixel, 20 megapixels
    "embedded-bomb.ico": (None, None, "over"),  # refused before Pillow opens (and decodes) it
    # stored 6000x4000 and tagged to be turned: sent upright
    "rotated-bomb.tiff": ((2731, 4096), (30, 30, 30), "shown"),
    # progressive: libjpeg keeps all coefficients, even for a thumbnail at 1/8 scale
    "cmyk-bomb.jpg": (None, None, "shown"),
}


def assert_one_line(reason: str | None) -> None:
    assert reason and "\n" not in reason and len(reason) <= 200, reason


def assert_over_budget(outcome: Outcome) -> None:
    """Refused before decoding, naming the MiB it needs (over the budget) and the limit."""
    assert not outcome.ok
    assert_one_line(outcome.refused)
    found = OVER_BUDGET.search(outcome.refused or "")
    assert found, outcome.refused
    assert int(found.group(1)) > DECODE_BUDGET_BYTES // MIB


def near(pixel: tuple[int, int, int] | None, expected: tuple[int, int, int]) -> bool:
    return pixel is not None and all(abs(a - b) <= 6 for a, b in zip(pixel, expected, strict=True))


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_hostile_image_prepares_or_is_refused_within_the_decode_budget(
    corpus: Corpus, name: str
) -> None:
    path = corpus.path(name)
    report = run_decodes([("prepare", path), ("thumbnail", path), ("gallery", path)])
    prepared, thumbnail, gallery = report.outcomes
    size, colour, shown = EXPECTED[name]

    if size is None:
        assert_over_budget(prepared)
        assert prepared.refused and prepared.refused.startswith(("image is ", "opening the image"))
    else:
        assert prepared.ok, prepared.refused
        assert prepared.size == size
        if colour is not None:
            assert near(prepared.pixel, colour), prepared.pixel

    if shown == "shown":
        assert thumbnail.ok, thumbnail.refused
        assert thumbnail.size is not None and max(thumbnail.size) == 256
        if colour is not None:
            assert near(thumbnail.pixel, colour), thumbnail.pixel
    elif shown == "over":
        assert_over_budget(thumbnail)
        assert thumbnail.refused and thumbnail.refused.startswith("too large to preview: ")
    else:
        assert thumbnail.refused == TOO_MANY_PIXELS

    # the API's sides are 15..4096 px and its formats JPEG, PNG, BMP and GIF
    assert not gallery.ok and gallery.code in (216201, 216202)
    assert_one_line(gallery.refused)

    assert report.extra <= DECODE_BUDGET_BYTES + SLACK, f"peak +{report.extra // MIB} MiB"


def test_five_hostile_images_decoded_at_once_share_one_budget(corpus: Corpus) -> None:
    jobs = [
        ("prepare", corpus.path("bilevel-bomb.png")),
        ("prepare", corpus.path("frames-bomb.png")),
        ("prepare", corpus.path("rotated-bomb.tiff")),
        ("thumbnail", corpus.path("cmyk-bomb.jpg")),
        ("thumbnail", corpus.path("rotated-bomb.tiff")),
    ]
    report = run_decodes(jobs, together=True)
    # each alone takes most of the budget: they waited for each other, and all made it
    assert [outcome.ok for outcome in report.outcomes] == [True] * 5, report.outcomes
    sizes = [outcome.size for outcome in report.outcomes]
    assert sizes == [(4096, 2816), (4096, 2926), (2731, 4096), (256, 205), (171, 256)]
    assert report.extra <= DECODE_BUDGET_BYTES + SLACK, f"peak +{report.extra // MIB} MiB"


def test_a_decode_needing_more_than_the_whole_budget_is_refused_not_left_waiting() -> None:
    budget = DecodeBudget(100 * MIB)
    with budget.reserve(60 * MIB), pytest.raises(ImageRefused) as caught:
        budget.reserve(101 * MIB).__enter__()  # refused at once: it could never run
    assert caught.value.reason == "decoding it needs 101 MiB, over the limit of 100 MiB"
    assert budget.held == 0 and budget.waiting == 0


def _wait_until(check: Callable[[], bool]) -> None:
    """Poll ``check()`` until it is true (the threads under test get there on their own)."""
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "the waiting decodes never queued"
        time.sleep(0.01)


def test_decodes_that_do_not_fit_beside_others_wait_their_turn_in_order() -> None:
    budget = DecodeBudget(100 * MIB)
    acquired = {"big": threading.Event(), "small": threading.Event()}

    def decode(name: str, need: int) -> None:
        with budget.reserve(need):
            acquired[name].set()

    with ExitStack() as running:
        running.enter_context(budget.reserve(90 * MIB))
        big = threading.Thread(target=decode, args=("big", 50 * MIB))
        big.start()
        _wait_until(lambda: budget.waiting == 1)
        small = threading.Thread(target=decode, args=("small", 5 * MIB))
        small.start()
        _wait_until(lambda: budget.waiting == 2)
        # 5 MiB would fit beside the 90 held, but the 50 MiB decode asked first
        assert not acquired["big"].is_set() and not acquired["small"].is_set()
        assert budget.held == 90 * MIB
    big.join(30)
    small.join(30)
    assert acquired["big"].is_set() and acquired["small"].is_set()
    assert budget.held == 0 and budget.waiting == 0
