"""Local features of same-image search: ORB keypoints, an inverted index, geometric checks.

A partial copy (a crop) of a stored picture shares no global thumbnail with it, but it
shares keypoints. Same-image search works in two stages:

1. Candidates (cheap, over every item): each stored item posts the 24-bit words of its
   ``INDEXED_KEYPOINTS`` strongest ORB keypoints (bytes 0-2 and 3-5 of the descriptor,
   two tables) in an inverted index of sorted numpy runs. A query looks up the words of
   its keypoints and every word one bit away (multi-probe); each hit votes for
   its item in a (rotation, scale) bin, so only hits that agree on one similarity
   transform add up. Words posted by too many items say nothing and are skipped.
2. Verification (the best ``CANDIDATES`` only): descriptors matched both ways, a
   similarity transform fitted by RANSAC, then the query warped onto the stored picture
   must agree with its stored 32x32 grey thumbnail (normalised cross-correlation) and
   cover at least half of it; ``same_image`` then holds it to the stored picture's grey
   levels too (a correlation is blind to gain and offset).

Coordinates are pixels of the *working image*: the grey picture scaled so that its
longest side is ``WORK_SIDE`` pixels.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

#: longest side of the grey working image every local feature is computed on, pixels
WORK_SIDE: Final = 512
#: pictures whose longest side is shorter keep no keypoints (a half of them is too small
#: for ORB's 31-pixel patches to find again), pixels
MIN_KEYPOINT_SIDE: Final = 128
#: keypoints a query uses
QUERY_KEYPOINTS: Final = 500
#: keypoints kept of a stored picture, strongest first (for verification)
STORED_KEYPOINTS: Final = 256
#: keypoints of a stored picture posted in the inverted index, strongest first
INDEXED_KEYPOINTS: Final = 256
#: side of the grey thumbnail the photometric check compares, pixels
CHECK_SIDE: Final = 32
#: candidates verified per search
CANDIDATES: Final = 16
#: least votes a candidate needs to be verified at all
MIN_VOTES: Final = 3
#: least RANSAC inliers (distinct points) of a match
MIN_INLIERS: Final = 6
#: least normalised cross-correlation of the warped query with the stored thumbnail
MIN_CORRELATION: Final = 0.9
#: least fraction of the stored picture the query must cover ("at least half")
MIN_COVERAGE: Final = 0.5

_TABLES: Final = 2
_WORD_BITS: Final = 24
_ANGLE_BINS: Final = 12
_OCTAVES: Final = 8
#: (rotation bin, octave difference) bins a hit can vote in
_GEO_BINS: Final = _ANGLE_BINS * 2 * _OCTAVES
#: XOR masks of the words a query looks up: its own, and every word 1 bit away (2 bits
#: away finds more but costs 12x the lookups: over a second at 100k items)
_PROBES: Final = np.array([0] + [1 << bit for bit in range(_WORD_BITS)], dtype=np.uint32)
#: RANSAC reprojection threshold, working-image pixels
_RANSAC_PIXELS: Final = 3.0
#: plausible scale of the query relative to the stored picture
_MIN_SCALE: Final = 0.1
_MAX_SCALE: Final = 10.0

_UInt8Array = npt.NDArray[np.uint8]
_FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class LocalFeatures:
    """The keypoints of one picture, strongest first, in working-image pixels."""

    #: working image size, pixels
    width: int
    height: int
    #: (n, 2) float32 keypoint positions
    points: _FloatArray
    #: (n,) uint8: rotation bin * 8 + pyramid octave of each keypoint
    geometry: _UInt8Array
    #: (n, 32) uint8 ORB descriptors
    descriptors: _UInt8Array
    #: (CHECK_SIDE, CHECK_SIDE) uint8 area-averaged grey thumbnail of the working image
    thumb: _UInt8Array

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class QueryImage:
    """What a same-image search needs of its picture: its features and its working image."""

    features: LocalFeatures
    grey: _UInt8Array


@dataclass(frozen=True)
class LocalMatch:
    """A verified partial or full copy: RANSAC inliers, correlation -1..1, coverage 0..1,
    and the similarity transform (2x3) from the query's working image to the stored one's."""

    inliers: int
    correlation: float
    coverage: float
    transform: npt.NDArray[np.float64] = field(compare=False, repr=False)

    @property
    def score(self) -> float:
        """0.5..0.99: how sure and how complete the copy is."""
        return 0.5 + 0.49 * max(0.0, self.correlation) * math.sqrt(min(1.0, self.coverage))


_local = threading.local()


def _orb(count: int) -> cv2.ORB:
    """A per-thread ORB detector (OpenCV's detectors are not safe to share)."""
    detectors: dict[int, cv2.ORB] | None = getattr(_local, "orb", None)
    if detectors is None:
        detectors = _local.orb = {}
    detector = detectors.get(count)
    if detector is None:
        # low FAST threshold: plain pictures (drawings, gradients) still yield keypoints
        detector = cv2.ORB_create(  # type: ignore[attr-defined]
            nfeatures=count, scaleFactor=1.2, nlevels=_OCTAVES, edgeThreshold=15,
            patchSize=31, fastThreshold=3,
        )  # fmt: skip
        detectors[count] = detector
    return detector


def local_features_of(grey: _UInt8Array, keep: int = STORED_KEYPOINTS) -> LocalFeatures | None:
    """The ``keep`` strongest keypoints of a grey working image; None if it has none."""
    keypoints, descriptors = _orb(max(keep, QUERY_KEYPOINTS)).detectAndCompute(grey, None)
    if descriptors is None or not keypoints:
        return None
    responses = np.array([kp.response for kp in keypoints], dtype=np.float32)
    order = np.argsort(-responses, kind="stable")[:keep]
    points = np.array([keypoints[i].pt for i in order], dtype=np.float32).reshape(-1, 2)
    angles = np.array([keypoints[i].angle for i in order], dtype=np.float32)
    octaves = np.array([keypoints[i].octave & 0xFF for i in order], dtype=np.int64)
    angle_bins = (np.floor(angles / (360.0 / _ANGLE_BINS)).astype(np.int64)) % _ANGLE_BINS
    geometry = (angle_bins * _OCTAVES + np.clip(octaves, 0, _OCTAVES - 1)).astype(np.uint8)
    height, width = grey.shape
    thumb = cv2.resize(grey, (CHECK_SIDE, CHECK_SIDE), interpolation=cv2.INTER_AREA)
    return LocalFeatures(
        width=width,
        height=height,
        points=points,
        geometry=geometry,
        descriptors=np.ascontiguousarray(descriptors[order], dtype=np.uint8),
        thumb=np.asarray(thumb, dtype=np.uint8),
    )


def query_image(grey: _UInt8Array) -> QueryImage | None:
    """The search side of a grey working image; None if it has no keypoints."""
    features = local_features_of(grey, QUERY_KEYPOINTS)
    return None if features is None else QueryImage(features, grey)


def words_of(descriptors: _UInt8Array) -> npt.NDArray[np.uint32]:
    """(n, 2) uint32 index words of descriptors: table number in bit 24, 24 descriptor bits."""
    d = descriptors.astype(np.uint32)
    words = [
        (np.uint32(table) << np.uint32(_WORD_BITS))
        | (d[:, 3 * table] << np.uint32(16))
        | (d[:, 3 * table + 1] << np.uint32(8))
        | d[:, 3 * table + 2]
        for table in range(_TABLES)
    ]
    return np.stack(words, axis=1)


@dataclass(frozen=True)
class ItemWords:
    """The postings of one item: its words and the geometry of each word's keypoint."""

    words: npt.NDArray[np.uint32]
    geometry: _UInt8Array

    @classmethod
    def of(cls, features: LocalFeatures) -> ItemWords:
        """The postings of the ``INDEXED_KEYPOINTS`` strongest keypoints of ``features``."""
        count = min(len(features), INDEXED_KEYPOINTS)
        words = words_of(features.descriptors[:count])
        geometry = np.repeat(features.geometry[:count, None], _TABLES, axis=1)
        return cls(words.ravel(), geometry.ravel())


#: a posting packs word (bits 39-63), item slot (bits 7-38) and keypoint geometry (bits 0-6)
WORD_SHIFT: Final = np.uint64(39)
SLOT_SHIFT: Final = np.uint64(7)
_SLOT_MASK: Final = np.uint64(0xFFFFFFFF)
_GEOMETRY_MASK: Final = np.uint64(0x7F)

_Postings = npt.NDArray[np.uint64]


def _pack(words: npt.NDArray[np.uint32], slot: int, geometry: _UInt8Array) -> _Postings:
    """Postings of one item, unsorted."""
    return (
        (words.astype(np.uint64) << WORD_SHIFT)
        | (np.uint64(slot) << SLOT_SHIFT)
        | geometry.astype(np.uint64)
    )


@dataclass(frozen=True)
class SavedPostings:
    """A KeypointIndex as ``saved`` gives it and ``restored`` takes it back."""

    #: sorted uint64 postings (word, slot, geometry), postings of removed items included
    runs: tuple[_Postings, ...]
    #: cont_sign of each slot, "" for a removed item
    signs: tuple[str, ...]
    #: (slots,) int64: postings of each slot's item
    posted: npt.NDArray[np.int64]


class KeypointIndex:
    """Inverted index word -> (item, keypoint geometry) over the items of one gallery.

    Postings are uint64 (word, slot, geometry) in a few sorted runs: a new item is a run
    of its own, and runs of similar size merge, so each posting is re-sorted O(log n)
    times. Removed items are dropped from the runs at the next merge. Not thread-safe:
    the caller holds the gallery's lock.
    """

    def __init__(self) -> None:
        #: sorted runs, never written once made (a saved index maps them from its file)
        self._runs: list[_Postings] = []
        self._signs: list[str | None] = []
        self._slot_of: dict[str, int] = {}
        self._alive = np.zeros(1024, dtype=bool)
        self._postings = 0
        self._dead_postings = 0
        self._posted: dict[int, int] = {}
        #: changes so far (inserts and removals): whether a saved copy is still current
        self.changes = 0

    @classmethod
    def restored(cls, saved: SavedPostings) -> KeypointIndex:
        """The index as ``saved`` (see ``SavedPostings``) left it; its runs are used as
        they are (read-only, e.g. mapped from a file), not copied or re-sorted."""
        index = cls()
        index._runs = list(saved.runs)
        index._signs = [sign or None for sign in saved.signs]
        alive = np.zeros(max(1024, len(saved.signs)), dtype=bool)
        for slot, sign in enumerate(index._signs):
            if sign is not None:
                index._slot_of[sign] = slot
                alive[slot] = True
                index._posted[slot] = int(saved.posted[slot])
        index._alive = alive
        index._postings = sum(index._posted.values())
        index._dead_postings = sum(len(run) for run in index._runs) - index._postings
        return index

    def saved(self) -> SavedPostings:
        """What ``restored`` needs to rebuild this index (the runs are shared, not copied:
        they are never written once made)."""
        posted = np.zeros(len(self._signs), dtype=np.int64)
        for slot, count in self._posted.items():
            posted[slot] = count
        signs = tuple(sign or "" for sign in self._signs)
        return SavedPostings(tuple(self._runs), signs, posted)

    def signs(self) -> set[str]:
        """The cont_signs of the items in the index."""
        return set(self._slot_of)

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, cont_sign: object) -> bool:
        return cont_sign in self._slot_of

    def _new_slot(self, cont_sign: str, postings: int) -> int:
        if cont_sign in self._slot_of:
            raise KeyError(f"{cont_sign} already indexed")
        slot = len(self._signs)
        if slot == len(self._alive):
            grown = np.zeros(2 * len(self._alive), dtype=bool)
            grown[:slot] = self._alive[:slot]
            self._alive = grown
        self.changes += 1
        self._signs.append(cont_sign)
        self._slot_of[cont_sign] = slot
        self._alive[slot] = True
        self._posted[slot] = postings
        self._postings += postings
        return slot

    def insert(self, cont_sign: str, item: ItemWords) -> None:
        """Post the words of a new item (its cont_sign must not be in the index)."""
        slot = self._new_slot(cont_sign, len(item.words))
        self._add_run(np.sort(_pack(item.words, slot, item.geometry)))

    def _add_run(self, run: _Postings) -> None:
        """Append a sorted run; merge the last runs while the newer is not the smaller."""
        run.flags.writeable = False
        self._runs.append(run)
        while len(self._runs) > 1 and len(self._runs[-1]) >= len(self._runs[-2]):
            newer = self._runs.pop()
            self._runs[-1] = self._merged([self._runs[-1], newer])

    def bulk_insert(self, items: Iterable[tuple[str, ItemWords]], total: int) -> None:
        """Post many items at once (one sort): what a start does with the stored items.

        ``total`` is how many words they post in all: they are packed straight into one
        array of that size (a list of 100k small arrays would double the peak memory).
        """
        postings = np.empty(total, dtype=np.uint64)
        filled = 0
        for cont_sign, item in items:
            slot = self._new_slot(cont_sign, len(item.words))
            postings[filled : filled + len(item.words)] = _pack(item.words, slot, item.geometry)
            filled += len(item.words)
        if filled != total:
            raise ValueError(f"{filled} words posted, {total} announced")
        if filled:
            # sorted in place: a copy would double the peak memory of a start
            postings.sort()
            self._add_run(postings)

    def _merged(self, runs: list[_Postings]) -> _Postings:
        """One sorted run of ``runs``' postings of items still in the index (a new array:
        runs are never written, a saved copy may be mapping or writing them)."""
        postings = np.concatenate(runs) if len(runs) > 1 else runs[0]
        alive = self._alive[((postings >> SLOT_SHIFT) & _SLOT_MASK).astype(np.int64)]
        if not alive.all():
            self._dead_postings -= int((~alive).sum())
            postings = postings[alive]
        if len(runs) > 1:
            # stable sort is a merge sort: it finds the sorted runs and merges them
            postings.sort(kind="stable")
        elif postings is runs[0]:
            return postings
        postings.flags.writeable = False
        return postings

    def remove(self, cont_sign: str) -> None:
        """Forget an item; its postings go at the next merge (or now, if most are dead)."""
        slot = self._slot_of.pop(cont_sign)
        self.changes += 1
        self._alive[slot] = False
        self._signs[slot] = None
        posted = self._posted.pop(slot)
        self._postings -= posted
        self._dead_postings += posted
        if self._dead_postings > max(4096, self._postings):
            self._runs = [self._merged(self._runs)] if self._runs else []
            self._dead_postings = 0

    def view(self) -> PostingsView:
        """The postings as they are now, to rank candidates on outside the lock."""
        return PostingsView(
            tuple(self._runs), self._alive[: len(self._signs)].copy(), self._postings
        )

    def sign_of(self, slot: int) -> str | None:
        """The cont_sign of the item in ``slot``; None once it is removed."""
        return self._signs[slot]

    def candidates(self, query: LocalFeatures, limit: int) -> list[tuple[str, int]]:
        """``PostingsView.candidates`` of the index as it is, as (cont_sign, votes)."""
        found = self.view().candidates(query, limit)
        return [(sign, votes) for slot, votes in found if (sign := self._signs[slot]) is not None]


@dataclass(frozen=True)
class PostingsView:
    """The postings of a KeypointIndex at one moment: its runs (never written once
    made) and which slots were alive. A search ranks candidates on it without the
    gallery's lock, so adds do not wait for the ranking."""

    runs: tuple[_Postings, ...]
    #: (slots,) bool
    alive: npt.NDArray[np.bool_]
    #: postings of the items alive
    postings: int

    def candidates(self, query: LocalFeatures, limit: int) -> list[tuple[int, int]]:
        """Up to ``limit`` items with the most geometrically consistent word hits, best
        first, as (slot, votes); items with fewer than MIN_VOTES are left out."""
        if not self.postings or not len(query):
            return []
        count = min(len(query), 1023)
        query_words = words_of(query.descriptors[:count])  # (n, tables)
        probes = (query_words[:, :, None] ^ _PROBES[None, None, :]).reshape(-1)
        probe_of = np.repeat(np.arange(count, dtype=np.int64), _TABLES * len(_PROBES))
        # sorted needles keep the binary searches in cache
        order = np.argsort(probes)
        probes, probe_of = probes[order].astype(np.uint64), probe_of[order]
        lows, highs = probes << WORD_SHIFT, (probes + np.uint64(1)) << WORD_SHIFT
        # a word posted by many items is a flat or common patch: it says nothing
        crowded = max(12, int(8 * self.postings / (_TABLES << _WORD_BITS)))
        hits, hit_query = [], []
        for run in self.runs:
            low = np.searchsorted(run, lows, side="left")
            sizes = np.searchsorted(run, highs, side="left") - low
            useful = (sizes > 0) & (sizes <= crowded)
            if not useful.any():
                continue
            low, sizes, owners = low[useful], sizes[useful], probe_of[useful]
            # positions low[i] .. low[i] + sizes[i] - 1 of every useful probe, flattened
            starts = np.repeat(low - np.cumsum(sizes) + sizes, sizes)
            hits.append(run[starts + np.arange(int(sizes.sum()))])
            hit_query.append(np.repeat(owners, sizes))
        if not hits:
            return []
        found = np.concatenate(hits)
        slots = ((found >> SLOT_SHIFT) & _SLOT_MASK).astype(np.int64)
        stored_geo = (found & _GEOMETRY_MASK).astype(np.int64)
        owners = np.concatenate(hit_query)
        alive = self.alive[slots]
        slots, stored_geo, owners = slots[alive], stored_geo[alive], owners[alive]
        if not slots.size:
            return []
        query_geo = query.geometry[:count].astype(np.int64)[owners]
        turn = (stored_geo // _OCTAVES - query_geo // _OCTAVES) % _ANGLE_BINS
        zoom = stored_geo % _OCTAVES - query_geo % _OCTAVES + _OCTAVES
        votes = []
        # each hit votes in its rotation bin and the next, so a turn near a border counts
        for shift in (0, 1):
            bins = ((turn + shift) % _ANGLE_BINS) * (2 * _OCTAVES) + zoom
            votes.append(((slots * _GEO_BINS + bins) << 10) | owners)
        # one vote per query keypoint per (item, bin)
        cells = np.unique(np.concatenate(votes)) >> 10
        cells, counts = np.unique(cells, return_counts=True)
        items = cells // _GEO_BINS
        # best bin of each item (cells are sorted, so each item's bins are contiguous)
        first = np.flatnonzero(np.r_[True, items[1:] != items[:-1]])
        best = np.maximum.reduceat(counts, first)
        owners_of_best = items[first]
        keep = best >= MIN_VOTES
        best, owners_of_best = best[keep], owners_of_best[keep]
        if not best.size:
            return []
        top = np.argsort(-best, kind="stable")[:limit]
        return [(int(owners_of_best[i]), int(best[i])) for i in top.tolist()]


def verify(query: QueryImage, stored: LocalFeatures) -> LocalMatch | None:
    """Whether ``query`` shows (part of) the stored picture; the match, or None.

    A match needs MIN_INLIERS distinct RANSAC inliers of one similarity transform, the
    query warped by it correlating at least MIN_CORRELATION with the stored thumbnail,
    and covering at least MIN_COVERAGE of the stored picture.
    """
    found = query.features
    if len(found) < MIN_INLIERS or len(stored) < MIN_INLIERS:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    matches = matcher.match(found.descriptors, stored.descriptors)
    if len(matches) < MIN_INLIERS:
        return None
    source = found.points[[m.queryIdx for m in matches]]
    target = stored.points[[m.trainIdx for m in matches]]
    transform, inlier_mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=_RANSAC_PIXELS, maxIters=2000
    )
    if transform is None or inlier_mask is None:
        return None
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    if not _MIN_SCALE < scale < _MAX_SCALE:
        return None
    inliers = inlier_mask.ravel().astype(bool)
    # keypoints found at several scales of one spot count once
    distinct = min(
        len(np.unique(np.round(source[inliers] / 4.0), axis=0)),
        len(np.unique(np.round(target[inliers] / 4.0), axis=0)),
    )
    if distinct < MIN_INLIERS:
        return None
    size = (stored.width, stored.height)
    warped = cv2.warpAffine(query.grey.astype(np.float32), transform, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(
        np.ones(query.grey.shape, dtype=np.float32), transform, size, flags=cv2.INTER_LINEAR
    )
    coverage = float(mask.mean())
    if coverage < MIN_COVERAGE:
        return None
    side = (CHECK_SIDE, CHECK_SIDE)
    small = cv2.resize(warped, side, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, side, interpolation=cv2.INTER_AREA)
    inside = small_mask > 0.99
    if inside.sum() < 16:
        return None
    a = small[inside] - small[inside].mean()
    b = stored.thumb.astype(np.float32)[inside]
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    # a flat overlap correlates with anything: it cannot confirm a match
    if denominator < 1e-3 or float(b.std()) < 2.0:
        return None
    correlation = float((a * b).sum()) / denominator
    if correlation < MIN_CORRELATION:
        return None
    return LocalMatch(distinct, correlation, coverage, np.asarray(transform, dtype=np.float64))
