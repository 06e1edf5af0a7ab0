"""Whether two pictures are the same image: their shapes and their content, compared finely.

The index finds candidates by coarse features (a 64-bit hash, an 8x8 colour thumbnail),
which pictures with little texture share although they differ: gradients cut in a
different number of bands, stripes, checkerboards, near shades of one colour, pages of
text. A candidate is the same image only if its fingerprint agrees with the picture's:

- shape: the two sizes are one scale apart, to within ``ASPECT_SLACK`` pixels of the
  smaller picture (a rescaled copy keeps its aspect to a pixel's rounding);
- luma: the grey picture area-averaged to ``FINE_SIDE`` x ``FINE_SIDE`` (from the
  decode's working image), compared pixel by pixel. A copy differs by JPEG noise and,
  at edges, by resampling: each difference is weighed against ``floor + slope x`` the
  edge strength *both* pictures show there (an edge only one of them has earns no
  slack), and the weights are averaged over small windows. The worst window decides;
- chroma: the 8x8 colour thumbnails the index keeps, (R - Y, B - Y) compared the same
  way (by the index, before a candidate's fingerprint is read).

Differences are in tolerances: 1 is the limit of the same image, and a confirmed copy
scores 0.9 (at the limit) to 0.999. A partial copy (keypoints) is compared where it
covers the stored picture, through the transform its keypoints fit.

A picture under ``MIN_KEYPOINT_SIDE`` pixels has no working image: its fingerprint is
its 32x32 thumbnail, and a pair with one is compared at that coarser side, with more
slack (fine stripes and small text cannot be told apart there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from syncd.gallery.images import THUMB_SIDE, DecodedImage

#: side of the grey fingerprint of a picture with a working image, pixels
FINE_SIDE: Final = 64
#: side of the grey fingerprint of a smaller picture (its thumbnail), pixels
COARSE_SIDE: Final = THUMB_SIDE
#: how far (pixels of the smaller picture) each side may be off one common scale
ASPECT_SLACK: Final = 1.5

_LUMA: Final = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Tolerance:
    """How much two fingerprints may differ at one pixel: ``floor`` grey levels plus
    ``slope`` times the edge strength both show there (grey levels per pixel); the
    differences in units of it are averaged over ``window`` x ``window`` pixels."""

    floor: float
    slope: float
    window: int


#: at FINE_SIDE (measured: copies, JPEG q40 to twice the size, up to 0.75; the closest
#: look-alikes, gradients of 20 and 25 bands at one aspect, 1.2)
FINE: Final = Tolerance(floor=2.5, slope=0.25, window=5)
#: at COARSE_SIDE, where a 32x32 thumbnail aliases fine patterns
COARSE: Final = Tolerance(floor=4.0, slope=0.75, window=5)
#: chroma, on the 8x8 colour thumbnails
CHROMA: Final = Tolerance(floor=6.0, slope=1.0, window=1)


@dataclass(frozen=True)
class Fingerprint:
    """What tells a picture from its look-alikes: its size and its grey content."""

    #: the picture's size, pixels (for an item stored before fingerprints: its working
    #: image's, which has the same aspect)
    width: int
    height: int
    #: (FINE_SIDE, FINE_SIDE) or (COARSE_SIDE, COARSE_SIDE) uint8 area-averaged luma
    grey: npt.NDArray[np.uint8]

    def __post_init__(self) -> None:
        if self.grey.shape not in ((FINE_SIDE, FINE_SIDE), (COARSE_SIDE, COARSE_SIDE)):
            raise ValueError(f"a fingerprint of shape {self.grey.shape}")


def fingerprint_of(image: DecodedImage) -> Fingerprint:
    """The fingerprint of a decoded picture: fine from its working image, else coarse
    from its thumbnail."""
    if image.grey is not None:
        grey = cv2.resize(image.grey, (FINE_SIDE, FINE_SIDE), interpolation=cv2.INTER_AREA)
    else:
        grey = (image.thumb.astype(np.float32) @ _LUMA).round().clip(0, 255)
    return Fingerprint(image.width, image.height, np.asarray(grey, dtype=np.uint8))


def same_shape(a: Fingerprint, b: Fingerprint) -> bool:
    """Whether one scale maps the size of ``a`` onto the size of ``b`` to within
    ASPECT_SLACK pixels of the smaller on each side."""
    (w1, h1), (w2, h2) = (a.width, a.height), (b.width, b.height)
    if w1 * h1 > w2 * h2:
        (w1, h1), (w2, h2) = (w2, h2), (w1, h1)
    # the scales from the larger to the smaller that each side allows must overlap
    low = max((w1 - ASPECT_SLACK) / w2, (h1 - ASPECT_SLACK) / h2)
    high = min((w1 + ASPECT_SLACK) / w2, (h1 + ASPECT_SLACK) / h2)
    return low <= high


def luma_difference(a: Fingerprint, b: Fingerprint) -> float:
    """How far apart the grey contents are, in tolerances (<= 1: the same image)."""
    first, second = a.grey.astype(np.float32), b.grey.astype(np.float32)
    if first.shape != second.shape:
        side = (COARSE_SIDE, COARSE_SIDE)
        first = np.asarray(cv2.resize(first, side, interpolation=cv2.INTER_AREA), np.float32)
        second = np.asarray(cv2.resize(second, side, interpolation=cv2.INTER_AREA), np.float32)
    tolerance = FINE if first.shape[0] == FINE_SIDE else COARSE
    return _difference(first, second, tolerance)


def chroma_differences(
    colours: npt.NDArray[np.uint8], others: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float32]:
    """How far apart the 8x8 RGB colour thumbnail ``colours`` (192 values) is in chroma
    from each of ``others`` (n, 192), in tolerances (<= 1: the same colours)."""
    if not len(others):
        return np.zeros(0, dtype=np.float32)
    first = _chroma(colours.reshape(1, -1))
    second = _chroma(others.reshape(-1, colours.size))
    both_edges = np.minimum(_edge_strengths(first), _edge_strengths(second))
    ratio = np.abs(first - second) / (CHROMA.floor + CHROMA.slope * both_edges)
    worst: npt.NDArray[np.float32] = ratio.reshape(len(second), -1).max(axis=1)
    return worst


def _chroma(colours: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """(n, 2, 8, 8): R - Y and B - Y of n flattened 8x8 RGB thumbnails."""
    rgb = colours.reshape(-1, 8, 8, 3).astype(np.float32)
    luma = rgb @ _LUMA
    return np.stack([rgb[..., 0] - luma, rgb[..., 2] - luma], axis=1)


def _edge_strengths(planes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Gradient magnitude (grey levels per pixel, Sobel over a mirrored border) of each
    plane of (..., h, w), spread to the 3x3 neighbourhood so that a copy's edge a
    fraction of a pixel away still counts."""
    pad = [(0, 0)] * (planes.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(planes, pad, mode="reflect")
    rows = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    cols = p[..., :, :-2] + 2 * p[..., :, 1:-1] + p[..., :, 2:]
    dx = rows[..., 2:] - rows[..., :-2]
    dy = cols[..., 2:, :] - cols[..., :-2, :]
    strength = np.pad(np.hypot(dx, dy) / np.float32(8), pad, mode="edge")
    height, width = planes.shape[-2:]
    spread = strength[..., 1 : height + 1, 1 : width + 1].copy()
    for top in range(3):
        for left in range(3):
            np.maximum(spread, strength[..., top : top + height, left : left + width], out=spread)
    return spread.astype(np.float32)


def _difference(
    first: npt.NDArray[np.float32], second: npt.NDArray[np.float32], tolerance: Tolerance
) -> float:
    """The worst window mean of |first - second| in units of the local tolerance."""
    return float(_window_ratios(first, second, tolerance).max())


def _window_ratios(
    first: npt.NDArray[np.float32], second: npt.NDArray[np.float32], tolerance: Tolerance
) -> npt.NDArray[np.float32]:
    """|first - second| in units of the local tolerance, averaged over the window
    around each pixel."""
    both_edges = np.minimum(_edge_strengths(first), _edge_strengths(second))
    ratio = np.abs(first - second) / (tolerance.floor + tolerance.slope * both_edges)
    if tolerance.window > 1:
        window = (tolerance.window, tolerance.window)
        ratio = cv2.blur(ratio, window, borderType=cv2.BORDER_REFLECT)
    return np.asarray(ratio, dtype=np.float32)


def difference(a: Fingerprint, b: Fingerprint) -> float:
    """How far apart two pictures are in shape and luma, in tolerances: <= 1 means the
    same image (as far as luma tells), ``math.inf`` pictures of different shapes."""
    if not same_shape(a, b):
        return math.inf
    return luma_difference(a, b)


def part_difference(
    query_grey: npt.NDArray[np.uint8],
    transform: npt.NDArray[np.float64],
    stored_size: tuple[int, int],
    stored: Fingerprint,
) -> float:
    """How far a partial copy is from the part of the stored picture it shows, where it
    covers it, in tolerances (<= ``part_allowance``: the same pixels). ``query_grey``
    is the query's working image, ``transform`` (2x3) maps it onto the stored picture's
    working image of ``stored_size`` (width, height), whose fingerprint is ``stored``.

    A keypoint match only correlates (gain and offset free): a ring of another grey or a
    line of other words correlates with the stored one as well. ``math.inf`` when the
    copy covers no window whole."""
    side = stored.grey.shape[0]
    tolerance = FINE if side == FINE_SIDE else COARSE
    size = (side, side)
    warped = cv2.warpAffine(
        query_grey.astype(np.float32), transform, stored_size, flags=cv2.INTER_LINEAR
    )
    cover = cv2.warpAffine(
        np.ones(query_grey.shape, dtype=np.float32), transform, stored_size, flags=cv2.INTER_LINEAR
    )
    small = np.asarray(cv2.resize(warped, size, interpolation=cv2.INTER_AREA), np.float32)
    covered = np.asarray(cv2.resize(cover, size, interpolation=cv2.INTER_AREA), np.float32) > 0.99
    # outside the copy the stored picture stands in for it: no difference there
    reference = stored.grey.astype(np.float32)
    small = np.where(covered, small, reference)
    ratio = _window_ratios(small, reference, tolerance)
    window = (tolerance.window, tolerance.window)
    inside = cv2.blur(covered.astype(np.float32), window, borderType=cv2.BORDER_REFLECT) > 0.99
    if not inside.any():
        return math.inf
    return float(ratio[inside].max())


def part_allowance(coverage: float) -> float:
    """How far (in tolerances) a partial copy covering ``coverage`` (0.5..1) of the stored
    picture may be from it: a copy's 1 for all of it, up to twice that for half of it, as
    the transform its keypoints fit rests on fewer of them (true crops of half the picture
    measured up to 1.3; look-alikes that keypoints fit whole, lines of other words on one
    layout, from 1.5)."""
    return 1.0 + 2.0 * min(0.5, max(0.0, 1.0 - coverage))


def copy_score(apart: float) -> float:
    """The search score of a copy ``apart`` tolerances from the picture (0..1):
    0.999 for no difference down to 0.9 at the limit."""
    return 0.999 - 0.099 * min(1.0, max(0.0, apart))
