"""Which candidates are the picture asked about, or the picture it is a part of.

Copies: the index lists candidates by coarse features; each is confirmed by its
fingerprint (``fingerprint``), read from the store. Partial copies (same_hq): the
keypoint index lists candidates, ``keypoints.verify`` fits a transform, and the query
warped by it must agree with the stored fingerprint in grey levels where it covers it.

An item stored before fingerprints were kept has none: a same_hq item then stands on
the 32x32 grey thumbnail and working-image size its keypoints keep (compared coarsely),
any other on the hash and colour thresholds of its time.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.gallery.fingerprint import (
    COARSE_SIDE,
    Fingerprint,
    copy_score,
    difference,
    part_allowance,
    part_difference,
)
from syncd.gallery.fingerprint_store import FingerprintStore
from syncd.gallery.index import (
    DUPLICATE_MAX_COLOUR_DIFF,
    DUPLICATE_MAX_HASH_DISTANCE,
    SAME_MAX_COLOUR_DIFF,
    SAME_MAX_HASH_DISTANCE,
    Candidate,
    Hit,
    ImageFeatures,
)
from syncd.gallery.keypoints import LocalFeatures, QueryImage, verify
from syncd.gallery.store import GalleryStore


@dataclass(frozen=True)
class LegacyRule:
    """The same-image thresholds of an item stored without a fingerprint."""

    max_hash_distance: int
    max_colour_diff: float

    def score(self, candidate: Candidate) -> float | None:
        """The old score of ``candidate`` (0.5..0.999), None if it is not the same image."""
        if (
            candidate.hash_distance > self.max_hash_distance
            or candidate.colour_diff > self.max_colour_diff
        ):
            return None
        score = 1.0 - (candidate.hash_distance + candidate.colour_diff / 8.0) / 64.0
        return min(0.999, max(0.5, score))


#: 216681 on add, and the item an image names in update and delete
IDENTITY: LegacyRule = LegacyRule(DUPLICATE_MAX_HASH_DISTANCE, DUPLICATE_MAX_COLOUR_DIFF)
#: same_hq search
COPIES: LegacyRule = LegacyRule(SAME_MAX_HASH_DISTANCE, SAME_MAX_COLOUR_DIFF)


@dataclass(frozen=True)
class Query:
    """The picture a same-image check is about."""

    cont_sign: str
    features: ImageFeatures
    fingerprint: Fingerprint


class SameImages:
    """Confirms candidates against the fingerprints (and older items' keypoint thumbnails)
    of one store. Thread-safe: it only reads the stores."""

    def __init__(self, store: GalleryStore, fingerprints: FingerprintStore) -> None:
        self._store = store
        self._fingerprints = fingerprints

    def confirmed(
        self, gallery: str, query: Query, candidates: list[Candidate], legacy: LegacyRule
    ) -> list[Hit]:
        """The candidates that are the query's picture, best first: score 1.0 for
        identical pixels, 0.9..0.999 by fingerprint, the old score for an item that
        has no fingerprint (``legacy``)."""
        if not candidates:
            return []
        stored = self._fingerprints.load(gallery, [c.cont_sign for c in candidates])
        missing = [c.cont_sign for c in candidates if c.cont_sign not in stored]
        if missing:
            stored.update(self._keypoint_thumbnails(gallery, missing))
        hits = []
        for candidate in candidates:
            score = self._score(query, candidate, stored.get(candidate.cont_sign), legacy)
            if score is not None:
                hits.append(Hit(candidate.cont_sign, candidate.brief, score))
        hits.sort(key=lambda hit: -hit.score)
        return hits

    def _score(
        self,
        query: Query,
        candidate: Candidate,
        fingerprint: Fingerprint | None,
        legacy: LegacyRule,
    ) -> float | None:
        if candidate.cont_sign == query.cont_sign:
            return 1.0
        if fingerprint is None:
            return legacy.score(candidate)
        apart = max(difference(query.fingerprint, fingerprint), candidate.chroma_diff)
        return copy_score(apart) if apart <= 1.0 else None

    def partial_copies(
        self, gallery: str, query: QueryImage, candidates: list[tuple[str, str]]
    ) -> list[Hit]:
        """The keypoint candidates (cont_sign, brief) that show the query's picture or the
        picture it is a part of: keypoints fit, and grey levels agree."""
        local = self._store.load_local_features(gallery, [sign for sign, _ in candidates])
        matches = []
        for sign, brief in candidates:
            features = local.get(sign)
            match = None if features is None else verify(query, features)
            if match is not None and features is not None:
                matches.append((sign, brief, features, match))
        # most candidates fail the keypoint fit: only the rest need their fingerprint
        fingerprints = self._fingerprints.load(gallery, [sign for sign, _, _, _ in matches])
        hits = []
        for sign, brief, features, match in matches:
            stored = fingerprints.get(sign) or _keypoint_thumbnail(features)
            if stored is not None:
                size = (features.width, features.height)
                apart = part_difference(query.grey, match.transform, size, stored)
                if apart > part_allowance(match.coverage):
                    continue
            hits.append(Hit(sign, brief, match.score))
        return hits

    def _keypoint_thumbnails(self, gallery: str, cont_signs: list[str]) -> dict[str, Fingerprint]:
        """Coarse fingerprints of items stored before fingerprints were kept, from their
        keypoints (same_hq items only have them)."""
        found = {}
        for sign, local in self._store.load_local_features(gallery, cont_signs).items():
            fingerprint = _keypoint_thumbnail(local)
            if fingerprint is not None:
                found[sign] = fingerprint
        return found


def _keypoint_thumbnail(local: LocalFeatures) -> Fingerprint | None:
    """A coarse fingerprint from the grey thumbnail and working-image size kept with the
    keypoints (same aspect as the picture); None if the thumbnail is of another side."""
    if local.thumb.shape != (COARSE_SIDE, COARSE_SIDE):
        return None
    return Fingerprint(local.width, local.height, local.thumb)
