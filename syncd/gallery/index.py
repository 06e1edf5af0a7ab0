"""In-memory image index of one gallery: features, the same-image test, and ranked search.

Every item's features live in numpy arrays (one row per item), so a search over 100k
items is a few vector operations, not a scan of database rows. The SQLite store is
the durable copy; the index is rebuilt from it at start and kept in step on each write.

Features, all derived from the 32x32 thumbnail of the decoded picture:
- ``phash``: 64-bit DCT perceptual hash of the grey image (robust to re-encoding and
  rescaling of textured pictures; compared by Hamming distance);
- ``colours``: an 8x8 RGB thumbnail (compared by mean absolute difference, 0-255), which
  tells apart pictures whose grey structure agrees but whose colours do not; the index
  also keeps its 4x4 grey layout, which a copy keeps even where the hash does not (the
  hash of a gradient or of stripes is mostly noise: the DCT has little to rank);
- ``vector``: unit vector of a 64-bin colour histogram (Hellinger) and the mean-centred
  8x8 grey layout, weighted 0.8/0.2; cosine similarity ranks similar-image search.

Same-image decisions start here: ``same_image_candidates`` lists the items whose hash
or layout is close and whose chroma agrees, nearest first; the caller confirms each by
its fingerprint (``fingerprint``), as coarse features alone merge look-alikes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from syncd.gallery.fingerprint import chroma_differences
from syncd.gallery.images import THUMB_SIDE

#: items stored without a fingerprint (by an earlier version) are the same image by
#: hash and colours alone, as then: for 216681 on add and image lookups very close only
DUPLICATE_MAX_HASH_DISTANCE: Final = 4
DUPLICATE_MAX_COLOUR_DIFF: Final = 8.0
#: ... and for same_hq search, re-encoded, rescaled and lightly edited copies
SAME_MAX_HASH_DISTANCE: Final = 12
SAME_MAX_COLOUR_DIFF: Final = 24.0
#: candidates of a same-image check: hash within SAME_MAX_HASH_DISTANCE or 4x4 grey
#: layout within this mean absolute difference (0-255; copies of fine stripes, whose
#: thumbnails alias, stay under 9)
LAYOUT_MAX_DIFF: Final = 12.0
#: candidates a same-image check confirms at most, nearest layout first
SAME_IMAGE_CANDIDATES: Final = 32

VECTOR_DIM: Final = 128
COLOUR_DIM: Final = 192

_FloatArray = npt.NDArray[np.float32]


def _dct_matrix(n: int) -> _FloatArray:
    """Orthonormal DCT-II matrix of size n x n."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    matrix[0, :] = math.sqrt(1.0 / n)
    return matrix.astype(np.float32)


_DCT: Final = _dct_matrix(THUMB_SIDE)
_BIT_WEIGHTS: Final = (np.uint64(1) << np.arange(64, dtype=np.uint64)).astype(np.uint64)
_LUMA: Final = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# colours dominate similarity: they survive cropping, the layout does not
_HISTOGRAM_WEIGHT: Final = np.float32(math.sqrt(0.8))
_LAYOUT_WEIGHT: Final = np.float32(math.sqrt(0.2))
LAYOUT_DIM: Final = 16
#: cells of a layout row: the index keeps each row of every item's 4x4 layout in an
#: array of its own, one 4-channel pixel per item, which OpenCV compares with a scalar
_ROW_CELLS: Final = 4
#: rows a layout scan compares in numpy rather than OpenCV
_SMALL_SCAN: Final = 256


@dataclass(frozen=True)
class ImageFeatures:
    """What the index keeps of one picture (see the module docstring)."""

    phash: int
    #: 8x8 RGB thumbnail, rounded to uint8, flattened (192 values)
    colours: npt.NDArray[np.uint8]
    #: unit vector, float32 (VECTOR_DIM values)
    vector: _FloatArray
    #: 4x4 grey layout of ``colours`` (LAYOUT_DIM uint8; derived, not stored)
    layout: npt.NDArray[np.uint8] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", layouts_of(self.colours)[0])


def features_of(thumb: npt.NDArray[np.uint8]) -> ImageFeatures:
    """Features of a 32x32x3 uint8 thumbnail."""
    rgb = thumb.astype(np.float32)
    grey = rgb @ _LUMA
    dct = _DCT @ grey @ _DCT.T
    low = dct[:8, :8].ravel()
    bits = (low > np.median(low)).astype(np.uint64)
    phash = int((bits * _BIT_WEIGHTS).sum(dtype=np.uint64))

    block = THUMB_SIDE // 8
    colours = rgb.reshape(8, block, 8, block, 3).mean(axis=(1, 3)).astype(np.float32)

    levels = (thumb // 64).astype(np.int64)
    bins = levels[..., 0] * 16 + levels[..., 1] * 4 + levels[..., 2]
    histogram = np.sqrt(np.bincount(bins.ravel(), minlength=64).astype(np.float32))
    layout = colours @ _LUMA
    layout = (layout - layout.mean()).ravel()
    vector = np.concatenate([_unit(histogram) * _HISTOGRAM_WEIGHT, _unit(layout) * _LAYOUT_WEIGHT])
    return ImageFeatures(phash, colours.round().astype(np.uint8).ravel(), vector.astype(np.float32))


def layouts_of(colours: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """(n, LAYOUT_DIM) uint8 4x4 grey layouts of (n, COLOUR_DIM) 8x8 RGB thumbnails (or
    of one, flattened)."""
    colours = colours.reshape(-1, COLOUR_DIM)
    count = len(colours)
    if not count:
        return np.zeros((0, LAYOUT_DIM), dtype=np.uint8)
    # as one tall picture, 8 rows per item: OpenCV does 100k items in 10 ms, not 300
    rgb = np.ascontiguousarray(colours.reshape(count * 8, 8, 3))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    halved = cv2.resize(grey, (4, count * 4), interpolation=cv2.INTER_AREA)
    return np.asarray(halved, dtype=np.uint8).reshape(count, LAYOUT_DIM)


def _layout_distances(
    layout_rows: list[npt.NDArray[np.uint8]], probe: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint32]:
    """Sum of absolute differences (0-4080) of each item's 4x4 layout to ``probe`` (16
    values), the layouts given row by row: ``layout_rows[k]`` (n, 4) holds row k of all.
    A quarter of a millisecond for 100k items, with no copy of the probe per item."""
    if len(layout_rows[0]) < _SMALL_SCAN:
        # OpenCV lets go of the interpreter lock on each call, and may wait a whole switch
        # interval to get it back: a few rows (what an add scans under the gallery's lock)
        # are compared in numpy, which keeps it
        layouts = np.concatenate(layout_rows, axis=1).astype(np.int16)
        small: npt.NDArray[np.uint32] = (
            np.abs(layouts - probe.astype(np.int16)).sum(axis=1).astype(np.uint32)
        )
        return small
    total: npt.NDArray[np.uint32] | None = None
    for row, cells in enumerate(layout_rows):
        scalar = tuple(float(value) for value in probe[row * _ROW_CELLS : (row + 1) * _ROW_CELLS])
        pixels = cells.reshape(-1, 1, _ROW_CELLS)
        apart = cv2.absdiff(pixels, scalar)  # type: ignore[call-overload]  # a Scalar, as OpenCV takes
        # the 4 bytes of an item as one uint32: pairs of them summed in its two 16-bit
        # halves, in place (a fresh array per step would cost more than the sums)
        packed = np.ascontiguousarray(apart).reshape(-1, _ROW_CELLS).view(np.uint32).ravel()
        high = packed >> np.uint32(8)
        high &= np.uint32(0x00FF00FF)
        packed &= np.uint32(0x00FF00FF)
        packed += high
        if total is None:
            total = packed
        else:
            total += packed
    if total is None:
        return np.zeros(0, dtype=np.uint32)
    high = total >> np.uint32(16)
    total &= np.uint32(0xFFFF)
    total += high
    return total


def _unit(values: _FloatArray) -> _FloatArray:
    norm = float(np.linalg.norm(values))
    return (values / norm).astype(np.float32) if norm > 1e-6 else np.zeros_like(values)


def _hamming(hashes: npt.NDArray[np.uint64], probe: int) -> npt.NDArray[np.int64]:
    """Hamming distance of each of ``hashes`` to ``probe`` (number of differing bits)."""
    xor = np.bitwise_xor(hashes, np.uint64(probe))
    if hasattr(np, "bitwise_count"):
        counted: npt.NDArray[np.int64] = np.bitwise_count(xor).astype(np.int64)
        return counted
    bits = np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1)  # numpy < 2.0
    summed: npt.NDArray[np.int64] = bits.sum(axis=1).astype(np.int64)
    return summed


@dataclass(frozen=True)
class IndexEntry:
    """One item as the index holds it."""

    cont_sign: str
    brief: str
    tag1: int
    tag2: int
    features: ImageFeatures
    #: seconds since the epoch the item was deleted (searchable until purged), or None
    deleted_at: float | None = None


@dataclass(frozen=True)
class TagFilter:
    """Which items a search considers: by ``tags`` (any position) or class ids (by position).

    ``wanted`` holds (value, position) pairs; position None matches either tag slot.
    ``any_of`` True means logical or (tag_logic 1), False logical and (tag_logic 0).
    """

    wanted: tuple[tuple[int, int | None], ...] = ()
    any_of: bool = False


@dataclass(frozen=True)
class Hit:
    """One search result."""

    cont_sign: str
    brief: str
    score: float


@dataclass(frozen=True)
class Candidate:
    """An item close enough in coarse features to be checked for the same image."""

    cont_sign: str
    brief: str
    #: Hamming distance of the perceptual hashes (0-64)
    hash_distance: int
    #: mean absolute difference of the 8x8 colour thumbnails (0-255)
    colour_diff: float
    #: chroma difference of the colour thumbnails, in tolerances (<= 1)
    chroma_diff: float


@dataclass(frozen=True)
class StoredItems:
    """Every stored item of a gallery as columns (row n of each is one item): what a
    start loads in one go instead of an IndexEntry per item."""

    signs: list[str]
    briefs: list[str]
    #: (n, 2) int32: tag1, tag2
    tags: npt.NDArray[np.int32]
    #: (n,) uint64
    phash: npt.NDArray[np.uint64]
    #: (n, COLOUR_DIM) uint8
    colours: npt.NDArray[np.uint8]
    #: (n, VECTOR_DIM) float32
    vectors: _FloatArray
    #: (n,) float64 epoch seconds of deletion, NaN for a live item
    deleted_at: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.signs)

    def rows(self, keep: npt.NDArray[np.bool_]) -> StoredItems:
        """Only the items where ``keep`` is True."""
        chosen = np.flatnonzero(keep).tolist()
        return StoredItems(
            signs=[self.signs[r] for r in chosen],
            briefs=[self.briefs[r] for r in chosen],
            tags=self.tags[keep],
            phash=self.phash[keep],
            colours=self.colours[keep],
            vectors=self.vectors[keep],
            deleted_at=self.deleted_at[keep],
        )


@dataclass(frozen=True)
class IndexState:
    """How far an index was filled and how often rows moved, at one moment: rows below
    ``size`` keep their item until the next removal."""

    size: int
    removals: int


class GalleryIndex:
    """The items of one gallery (live and deleted-but-searchable) as numpy arrays.

    Not thread-safe: the caller holds the gallery's lock around every method, but for
    ``same_image_candidates`` over the rows below an ``IndexState`` taken under it: an
    insert writes rows above them, and a removal (which moves a row) shows in ``state``.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._size = 0
        self._removals = 0
        self._signs: list[str] = []
        self._briefs: list[str] = []
        self._row_of: dict[str, int] = {}
        self._phash = np.zeros(capacity, dtype=np.uint64)
        self._colours = np.zeros((capacity, COLOUR_DIM), dtype=np.uint8)
        self._vectors = np.zeros((capacity, VECTOR_DIM), dtype=np.float32)
        self._layout_rows = [
            np.zeros((capacity, _ROW_CELLS), dtype=np.uint8) for _ in range(LAYOUT_DIM // 4)
        ]
        self._tags = np.zeros((capacity, 2), dtype=np.int32)
        self._deleted_at = np.full(capacity, np.nan, dtype=np.float64)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, cont_sign: object) -> bool:
        return cont_sign in self._row_of

    def _grow(self) -> None:
        capacity = max(1024, 2 * len(self._phash))

        def grown(array: npt.NDArray[np.generic], fill: float = 0.0) -> npt.NDArray[np.generic]:
            bigger = np.full((capacity, *array.shape[1:]), fill, dtype=array.dtype)
            bigger[: self._size] = array[: self._size]
            return bigger

        self._phash = grown(self._phash)  # type: ignore[assignment]
        self._colours = grown(self._colours)  # type: ignore[assignment]
        self._vectors = grown(self._vectors)  # type: ignore[assignment]
        self._layout_rows = [grown(cells) for cells in self._layout_rows]  # type: ignore[misc]
        self._tags = grown(self._tags)  # type: ignore[assignment]
        self._deleted_at = grown(self._deleted_at, np.nan)  # type: ignore[assignment]

    @classmethod
    def of(cls, items: StoredItems) -> GalleryIndex:
        """An index holding ``items`` (their cont_signs must be distinct)."""
        count = len(items)
        index = cls(max(1024, count))
        index._size = count
        index._signs = list(items.signs)
        index._briefs = list(items.briefs)
        index._row_of = {sign: row for row, sign in enumerate(items.signs)}
        if len(index._row_of) != count:
            raise KeyError("a cont_sign is stored twice")
        index._phash[:count] = items.phash
        index._colours[:count] = items.colours
        index._vectors[:count] = items.vectors
        # derived, not stored: a start computes them for 100k items in milliseconds
        layouts = layouts_of(items.colours)
        for row, cells in enumerate(index._layout_rows):
            cells[:count] = layouts[:, row * _ROW_CELLS : (row + 1) * _ROW_CELLS]
        index._tags[:count] = items.tags
        index._deleted_at[:count] = items.deleted_at
        return index

    def insert(self, entry: IndexEntry) -> None:
        """Add ``entry`` (its cont_sign must not be in the index)."""
        if entry.cont_sign in self._row_of:
            raise KeyError(f"{entry.cont_sign} already indexed")
        if self._size == len(self._phash):
            self._grow()
        row = self._size
        self._signs.append(entry.cont_sign)
        self._briefs.append(entry.brief)
        self._row_of[entry.cont_sign] = row
        self._phash[row] = np.uint64(entry.features.phash)
        self._colours[row] = entry.features.colours
        self._vectors[row] = entry.features.vector
        # the layout comes with the features, made before the gallery's lock was taken
        layout = entry.features.layout
        for part, cells in enumerate(self._layout_rows):
            cells[row] = layout[part * _ROW_CELLS : (part + 1) * _ROW_CELLS]
        self._tags[row] = (entry.tag1, entry.tag2)
        self._deleted_at[row] = np.nan if entry.deleted_at is None else entry.deleted_at
        self._size += 1

    def remove(self, cont_sign: str) -> None:
        """Forget ``cont_sign`` entirely (the last row moves into its place)."""
        row = self._row_of.pop(cont_sign)
        self._removals += 1
        last = self._size - 1
        if row != last:
            moved = self._signs[last]
            self._signs[row] = moved
            self._briefs[row] = self._briefs[last]
            self._row_of[moved] = row
            arrays: tuple[npt.NDArray[np.generic], ...] = (
                self._phash, self._colours, self._vectors, *self._layout_rows, self._tags,
                self._deleted_at,
            )  # fmt: skip
            for array in arrays:
                array[row] = array[last]
        self._signs.pop()
        self._briefs.pop()
        self._deleted_at[last] = np.nan
        self._size = last

    def state(self) -> IndexState:
        """The rows filled so far and the removals so far (see ``IndexState``)."""
        return IndexState(self._size, self._removals)

    def is_live(self, cont_sign: str) -> bool:
        """Whether ``cont_sign`` is indexed and not deleted."""
        row = self._row_of.get(cont_sign)
        return row is not None and bool(np.isnan(self._deleted_at[row]))

    def mark_deleted(self, cont_sign: str, when: float) -> None:
        """Record that ``cont_sign`` was deleted at ``when`` (epoch seconds)."""
        self._deleted_at[self._row_of[cont_sign]] = when

    def set_meta(self, cont_sign: str, brief: str, tag1: int, tag2: int) -> None:
        """Replace the brief and tags of ``cont_sign``."""
        row = self._row_of[cont_sign]
        self._briefs[row] = brief
        self._tags[row] = (tag1, tag2)

    def meta(self, cont_sign: str) -> tuple[str, int, int]:
        """(brief, tag1, tag2) of ``cont_sign``."""
        row = self._row_of[cont_sign]
        return self._briefs[row], int(self._tags[row, 0]), int(self._tags[row, 1])

    def live_items(self) -> list[tuple[str, str, int, int]]:
        """(cont_sign, brief, tag1, tag2) of every item not deleted, in index order."""
        live = np.flatnonzero(np.isnan(self._deleted_at[: self._size]))
        return [
            (self._signs[r], self._briefs[r], int(self._tags[r, 0]), int(self._tags[r, 1]))
            for r in live.tolist()
        ]

    def live_count(self) -> int:
        """Number of items not deleted."""
        return int(np.isnan(self._deleted_at[: self._size]).sum())

    def _colour_diff(
        self, rows: npt.NDArray[np.int64], features: ImageFeatures
    ) -> npt.NDArray[np.float64]:
        """Mean absolute difference (0-255) of the 8x8 colour thumbnails of ``rows``."""
        stored = self._colours[rows].astype(np.int16)
        diff: npt.NDArray[np.float64] = np.abs(stored - features.colours.astype(np.int16)).mean(
            axis=1
        )
        return diff

    def same_image_candidates(
        self,
        cont_sign: str,
        features: ImageFeatures,
        tags: TagFilter | None = None,
        live_only: bool = False,
        limit: int = SAME_IMAGE_CANDIDATES,
        rows: tuple[int, int] | None = None,
    ) -> list[Candidate]:
        """Items that may be this very picture, to confirm by their fingerprints: the
        item of identical pixels first, then those whose hash is within
        SAME_MAX_HASH_DISTANCE or whose 4x4 layout is within LAYOUT_MAX_DIFF, and whose
        colours (within SAME_MAX_COLOUR_DIFF) and chroma agree, nearest layout first, at
        most ``limit``. ``tags`` and
        ``live_only`` (deleted-but-searchable items left out) narrow the items, ``rows``
        (start, stop) to those rows (all by default)."""
        start, stop = (0, self._size) if rows is None else rows
        if stop <= start:
            return []
        # arrays read once: an insert may replace them (grown), with the same rows below
        phash, layout_rows = self._phash, self._layout_rows
        distances = _hamming(phash[start:stop], features.phash)
        apart = _layout_distances([cells[start:stop] for cells in layout_rows], features.layout)
        near = (distances <= SAME_MAX_HASH_DISTANCE) | (apart <= LAYOUT_DIM * LAYOUT_MAX_DIFF)
        exact = self._row_of.get(cont_sign)
        if exact is not None and start <= exact < stop:
            near[exact - start] = True
        else:
            exact = None
        found = np.flatnonzero(near)
        distances, apart, picked = distances[found], apart[found], found + start
        layouts = apart.astype(np.float32) / np.float32(LAYOUT_DIM)
        if exact is not None:
            layouts[picked == exact] = -1.0
        keep = np.ones(len(picked), dtype=bool)
        if live_only:
            keep &= np.isnan(self._deleted_at[picked])
        mask = None if tags is None else self._tag_mask(tags, picked)
        if mask is not None:
            keep &= mask
        picked, distances, layouts = picked[keep], distances[keep], layouts[keep]
        # twice the limit: a few may fail the colour checks
        order = np.argsort(layouts, kind="stable")[: 2 * limit]
        picked, distances = picked[order], distances[order]
        colour_diffs = self._colour_diff(picked, features)
        # far colours first (the cheap test: copies, aliased stripes included, stay under
        # half of it), then chroma
        near_colours = colour_diffs <= SAME_MAX_COLOUR_DIFF
        picked, distances = picked[near_colours], distances[near_colours]
        colour_diffs = colour_diffs[near_colours]
        if not picked.size:
            return []
        chromas = chroma_differences(features.colours, self._colours[picked]).tolist()
        candidates = []
        for row, distance, colour_diff, chroma in zip(
            picked.tolist(), distances.tolist(), colour_diffs.tolist(), chromas, strict=True
        ):
            if chroma > 1.0:
                continue
            candidate = Candidate(
                self._signs[row], self._briefs[row], distance, colour_diff, chroma
            )
            candidates.append(candidate)
            if len(candidates) == limit:
                break
        return candidates

    def _tag_mask(
        self, tags: TagFilter, rows: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[np.bool_] | None:
        """Which items (of ``rows``, else all) pass ``tags``; None: all of them."""
        if not tags.wanted:
            return None
        current = self._tags[: self._size] if rows is None else self._tags[rows]
        masks = []
        for value, position in tags.wanted:
            if position is None:
                masks.append((current[:, 0] == value) | (current[:, 1] == value))
            else:
                masks.append(current[:, position] == value)
        combined: npt.NDArray[np.bool_] = masks[0]
        for mask in masks[1:]:
            combined = (combined | mask) if tags.any_of else (combined & mask)
        return combined

    def matches_tags(self, cont_sign: str, tags: TagFilter) -> bool:
        """Whether the indexed item ``cont_sign`` passes the tag filter ``tags``."""
        row = self._row_of.get(cont_sign)
        if row is None:
            return False
        if not tags.wanted:
            return True
        held = (int(self._tags[row, 0]), int(self._tags[row, 1]))
        found = [
            value in held if position is None else held[position] == value
            for value, position in tags.wanted
        ]
        return any(found) if tags.any_of else all(found)

    def brief(self, cont_sign: str) -> str:
        """The brief of the indexed item ``cont_sign``."""
        return self._briefs[self._row_of[cont_sign]]

    def search_similar(
        self, cont_sign: str, features: ImageFeatures, tags: TagFilter, limit: int
    ) -> list[Hit]:
        """Every item ranked by visual similarity (cosine, clipped to 0-1; 1.0 for
        identical pixels), best first, at most ``limit``."""
        if not self._size:
            return []
        scores = self._vectors[: self._size] @ features.vector
        same = self._row_of.get(cont_sign)
        if same is not None:
            scores[same] = 1.0
        mask = self._tag_mask(tags)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        count = min(limit, self._size)
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top], kind="stable")]
        hits = []
        for row in top.tolist():
            score = float(scores[row])
            if score == -np.inf:
                break
            hits.append(Hit(self._signs[row], self._briefs[row], min(1.0, max(0.0, score))))
        return hits
