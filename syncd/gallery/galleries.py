"""The items of the three galleries: index in memory, rows in SQLite, deletion latency.

Each gallery has one lock; a request decodes its image and finds its keypoints outside
the lock, and holds it only for the index lookups and the store write. A search ranks
keypoint candidates outside it too, on a view of the postings (runs are never written).

Start: the global index is read from the store in columns; the keypoint index is mapped
from the file a stop (or the start that last built it) saved beside the store
(``saved_index``), brought in step with the store's items (a crash may have left it
behind), or built from the store when there is no usable file (an upgrade, a torn file).

same_hq search answers the same images only: copies (re-encoded, rescaled) and, through
keypoints, partial copies (a crop keeping at least half of the picture), verified
geometrically outside the lock (see ``keypoints``). A copy, like the image a 216681 or
an update or delete by image names, is a candidate of the index confirmed by its
fingerprint (``same_image``): coarse features alone merge look-alike pictures.

Deletion latency (``delete_latency`` seconds): a deleted item keeps being found by
search and keeps refusing a re-add of its image (216681) until the latency has passed,
as the API document describes; update and delete no longer see it, and neither does
the ``/_syncd/items`` dump. Afterwards it is purged from the index and the store.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from syncd.api.baidu.codes import ITEM_EXISTS_CODE, error_for, error_message
from syncd.api.baidu.galleries import GALLERY_NAMES
from syncd.api.baidu.limits import MAX_SEARCH_POSITION
from syncd.errors import ItemExistsError
from syncd.gallery.fingerprint import fingerprint_of
from syncd.gallery.fingerprint_store import FingerprintStore
from syncd.gallery.images import DecodedImage
from syncd.gallery.index import (
    GalleryIndex,
    Hit,
    IndexEntry,
    IndexState,
    TagFilter,
    features_of,
)
from syncd.gallery.keypoints import (
    CANDIDATES,
    ItemWords,
    KeypointIndex,
    LocalFeatures,
    local_features_of,
    query_image,
)
from syncd.gallery.same_image import COPIES, IDENTITY, LegacyRule, Query, SameImages
from syncd.gallery.saved_index import index_path
from syncd.gallery.saved_index import load as load_saved_index
from syncd.gallery.saved_index import save as save_index
from syncd.gallery.store import GalleryStore


@dataclass
class _Gallery:
    name: str
    index: GalleryIndex = field(default_factory=GalleryIndex)
    #: keypoints of the items (same_hq only: what finds partial copies)
    keypoints: KeypointIndex = field(default_factory=KeypointIndex)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: ``keypoints.changes`` when the index file was last written (-1: the file is stale)
    saved_changes: int = 0
    #: (deleted_at, cont_sign) in deletion order, waiting for the latency to pass
    pending: collections.deque[tuple[float, str]] = field(default_factory=collections.deque)


logger = logging.getLogger(__name__)

#: galleries whose same-image search finds partial copies by keypoints
KEYPOINT_GALLERIES = frozenset({"same_hq"})


@dataclass(frozen=True)
class LiveItem:
    """One item that is not deleted, as ``/_syncd/items`` lists it."""

    cont_sign: str
    brief: str
    tag1: int
    tag2: int


@dataclass(frozen=True)
class SearchPage:
    """One page of search results."""

    hits: list[Hit]
    has_more: bool


@dataclass(frozen=True)
class MetaChange:
    """What an update sets: None leaves a field as it is."""

    brief: str | None = None
    tag1: int | None = None
    tag2: int | None = None


class Galleries:
    """Add, search, update and delete over the three galleries, durable and indexed."""

    def __init__(self, store: GalleryStore, delete_latency: float = 0.0) -> None:
        self._store = store
        self._fingerprints = FingerprintStore(store.path)
        self._same = SameImages(store, self._fingerprints)
        self.delete_latency = max(0.0, delete_latency)
        self._galleries: dict[str, _Gallery] = {name: _Gallery(name) for name in GALLERY_NAMES}
        now = time.time()
        for gallery in self._galleries.values():
            items = store.load(gallery.name)
            deleted = ~np.isnan(items.deleted_at)
            gone = deleted & (items.deleted_at + self.delete_latency <= now)
            expired = [items.signs[row] for row in np.flatnonzero(gone).tolist()]
            if expired:
                items = items.rows(~gone)
                deleted = ~np.isnan(items.deleted_at)
            gallery.index = GalleryIndex.of(items)
            gallery.pending.extend(
                sorted(
                    (float(items.deleted_at[row]), items.signs[row])
                    for row in np.flatnonzero(deleted).tolist()
                )
            )
            if expired:
                store.purge(gallery.name, expired)
            if gallery.name in KEYPOINT_GALLERIES:
                self._open_keypoints(gallery)
        # fingerprints of items a crash purged, or never stored, are swept in the
        # background: the start need not wait for a pass over the whole table
        self._sweeper = threading.Thread(
            target=self._fingerprints.sweep,
            args=(self._fingerprints.last_row(),),
            name="syncd-gallery-sweep",
            daemon=True,
        )
        self._sweeper.start()
        self._saving = threading.Lock()
        # a start that had to build an index saves it at once: a crash must not cost
        # the next start the whole build again
        self._saver: threading.Thread | None = None
        if any(g.keypoints.changes != g.saved_changes for g in self._galleries.values()):
            self._saver = threading.Thread(
                target=self.save_indexes, name="syncd-gallery-save-index", daemon=True
            )
            self._saver.start()

    def _open_keypoints(self, gallery: _Gallery) -> None:
        """The keypoint index of ``gallery``: its saved copy brought in step with the store
        (items added or purged since it was saved), or else built from the store."""
        path = index_path(self._store.path.parent, gallery.name)
        saved = load_saved_index(path)
        if saved is not None:
            index = KeypointIndex.restored(saved)
            held = index.signs()
            stored = self._store.keypoint_signs(gallery.name)
            gone, missing = held - stored, stored - held
            # a file mostly dead or missing most items: a rebuild is leaner than the patch
            if len(gone) <= len(held) // 2 and len(missing) <= max(10_000, len(held)):
                for sign in gone:
                    index.remove(sign)
                # an item's words are a function of its pixels, which its cont_sign hashes
                words = self._store.load_words_of(gallery.name, sorted(missing))
                index.bulk_insert(words, sum(len(item.words) for _, item in words))
                gallery.keypoints = index
                gallery.saved_changes = 0
                return
            logger.info("saved keypoint index of %s is stale: rebuilding it", gallery.name)
        total = self._store.count_words(gallery.name)
        gallery.keypoints.bulk_insert(self._store.load_words(gallery.name), total)
        # the file on disk (if any) is not this index: the next save must replace it
        gallery.saved_changes = -1 if saved is not None else 0

    def save_indexes(self) -> None:
        """Save the keypoint index of each gallery that changed since it was last saved,
        beside the store (a failure is one log line: the next start rebuilds instead)."""
        with self._saving:
            for gallery in self._galleries.values():
                if gallery.name not in KEYPOINT_GALLERIES:
                    continue
                with gallery.lock:
                    changes = gallery.keypoints.changes
                    if changes == gallery.saved_changes:
                        continue
                    saved = gallery.keypoints.saved()
                try:
                    save_index(index_path(self._store.path.parent, gallery.name), saved)
                except OSError as exc:
                    logger.warning("keypoint index of %s not saved: %s", gallery.name, exc)
                    continue
                with gallery.lock:
                    gallery.saved_changes = changes

    def close(self) -> None:
        """Save what changed of the indexes (a stop: the next start maps them)."""
        if self._saver is not None:
            self._saver.join()
            self._saver = None
        self.save_indexes()
        self._sweeper.join()
        self._fingerprints.close()

    def _gallery(self, name: str) -> _Gallery:
        return self._galleries[name]

    def _purge_expired(self, gallery: _Gallery, now: float) -> None:
        """Forget deleted items whose latency has passed (caller holds the lock)."""
        expired = []
        while gallery.pending and gallery.pending[0][0] + self.delete_latency <= now:
            _, sign = gallery.pending.popleft()
            if sign in gallery.index and not gallery.index.is_live(sign):
                gallery.index.remove(sign)
                if sign in gallery.keypoints:
                    gallery.keypoints.remove(sign)
                expired.append(sign)
        if expired:
            self._store.purge(gallery.name, expired)
            self._fingerprints.purge(gallery.name, expired)

    def add(self, name: str, image: DecodedImage, brief: str, tag1: int, tag2: int) -> str:
        """Store a new item; its cont_sign.

        Raises ItemExistsError (216681) naming the held item when the gallery holds the
        same image, also one deleted less than ``delete_latency`` ago.
        """
        query = _query(image)
        local = _local_features(name, image)
        gallery = self._gallery(name)
        # a crop is an item of its own: only a copy of the whole picture is the same image
        seen, state = self._copies_until(gallery, query, IDENTITY)
        now = time.time()
        with gallery.lock:
            self._purge_expired(gallery, now)
            existing = self._copies_since(gallery, query, IDENTITY, seen, state)
            if existing:
                # like the real service, the answer names the item it holds
                raise ItemExistsError(
                    ITEM_EXISTS_CODE, error_message(ITEM_EXISTS_CODE), None, existing[0].cont_sign
                )
            entry = IndexEntry(image.cont_sign, brief, tag1, tag2, query.features)
            # the fingerprint first: an item never exists without it, even after a crash
            self._fingerprints.insert(name, image.cont_sign, query.fingerprint)
            self._store.insert(name, entry, now, local)
            gallery.index.insert(entry)
            if local is not None:
                gallery.keypoints.insert(image.cont_sign, ItemWords.of(local))
        return image.cont_sign

    def search(
        self, name: str, image: DecodedImage, tags: TagFilter, pn: int, rn: int
    ) -> SearchPage:
        """The page pn..pn+rn of the results, best first: copies of the image in
        same_hq; every item ranked by visual similarity in similar and product."""
        gallery = self._gallery(name)
        depth = _depth(pn, rn)
        if name not in KEYPOINT_GALLERIES:
            features = features_of(image.thumb)
            with gallery.lock:
                self._purge_expired(gallery, time.time())
                hits = gallery.index.search_similar(image.cont_sign, features, tags, depth)
            return _page(hits, pn, rn)
        same = _query(image)
        query = None if image.grey is None else query_image(image.grey)
        candidates: list[tuple[str, str]] = []
        seen, state = self._copies_until(gallery, same, COPIES, tags)
        with gallery.lock:
            self._purge_expired(gallery, time.time())
            hits = self._copies_since(gallery, same, COPIES, seen, state, tags)[:depth]
            postings = None if query is None else gallery.keypoints.view()
        if query is None or postings is None:
            return _page(hits[:depth], pn, rn)
        # ranked without the lock: an add waits for no search's ranking
        ranked = postings.candidates(query.features, 4 * CANDIDATES)
        found = {hit.cont_sign for hit in hits}
        with gallery.lock:
            for slot, _ in ranked:
                sign = gallery.keypoints.sign_of(slot)
                # an item removed since the view was taken is no candidate
                if sign is None or sign in found or not gallery.index.matches_tags(sign, tags):
                    continue
                candidates.append((sign, gallery.index.brief(sign)))
                if len(candidates) == CANDIDATES:
                    break
        if candidates:
            hits = _best_first(hits + self._same.partial_copies(name, query, candidates))
        return _page(hits[:depth], pn, rn)

    def resolve_image(self, name: str, image: DecodedImage) -> str:
        """The cont_sign of the live item that is this image; 216680 if none."""
        query = _query(image)
        gallery = self._gallery(name)
        seen, state = self._copies_until(gallery, query, IDENTITY, live_only=True)
        with gallery.lock:
            self._purge_expired(gallery, time.time())
            hits = self._copies_since(gallery, query, IDENTITY, seen, state, live_only=True)
        if not hits:
            raise error_for(216680)
        return hits[0].cont_sign

    def _copies_until(
        self,
        gallery: _Gallery,
        query: Query,
        legacy: LegacyRule,
        tags: TagFilter | None = None,
        live_only: bool = False,
    ) -> tuple[list[Hit], IndexState]:
        """The items that are this very picture (identical pixels, or a copy confirmed by
        fingerprint) among those the index holds now, best first, and the index state
        they were found in: scanned and confirmed without the gallery's lock, so that an
        add waits for no other's scan (``_copies_since`` completes them under it).
        ``live_only`` leaves out deleted-but-searchable items, ``tags`` those it refuses."""
        with gallery.lock:
            self._purge_expired(gallery, time.time())
            state = gallery.index.state()
        candidates = gallery.index.same_image_candidates(
            query.cont_sign, query.features, tags, live_only, rows=(0, state.size)
        )
        return self._same.confirmed(gallery.name, query, candidates, legacy), state

    def _copies_since(
        self,
        gallery: _Gallery,
        query: Query,
        legacy: LegacyRule,
        seen: list[Hit],
        state: IndexState,
        tags: TagFilter | None = None,
        live_only: bool = False,
    ) -> list[Hit]:
        """``seen``, what ``_copies_until`` found in ``state``, completed with the items
        added since, best first; all found again if a removal moved rows meanwhile. The
        caller holds the gallery's lock."""
        index = gallery.index
        now = index.state()
        if now.removals != state.removals:
            candidates = index.same_image_candidates(
                query.cont_sign, query.features, tags, live_only
            )
            return self._same.confirmed(gallery.name, query, candidates, legacy)
        later = index.same_image_candidates(
            query.cont_sign, query.features, tags, live_only, rows=(state.size, now.size)
        )
        # a deletion or a change of tags since does not move rows, but it counts
        hits = [
            hit
            for hit in seen
            if (not live_only or index.is_live(hit.cont_sign))
            and (tags is None or index.matches_tags(hit.cont_sign, tags))
        ]
        hits += self._same.confirmed(gallery.name, query, later, legacy)
        return sorted(hits, key=lambda hit: -hit.score)

    def update(self, name: str, cont_sign: str, change: MetaChange) -> None:
        """Change brief and/or tags of a live item; 216680 if it is not in the gallery."""
        gallery = self._gallery(name)
        with gallery.lock:
            self._purge_expired(gallery, time.time())
            if not gallery.index.is_live(cont_sign):
                raise error_for(216680)
            brief, tag1, tag2 = gallery.index.meta(cont_sign)
            brief = brief if change.brief is None else change.brief
            tag1 = tag1 if change.tag1 is None else change.tag1
            tag2 = tag2 if change.tag2 is None else change.tag2
            self._store.update_meta(name, cont_sign, brief, tag1, tag2)
            gallery.index.set_meta(cont_sign, brief, tag1, tag2)

    def delete(self, name: str, cont_signs: list[str], strict: bool) -> int:
        """Delete the live items among ``cont_signs``; the number deleted.

        ``strict``: answer 216680 when none of them is in the gallery (a single
        cont_sign or an image); a batch is lenient and deletes what exists.
        """
        gallery = self._gallery(name)
        now = time.time()
        with gallery.lock:
            self._purge_expired(gallery, now)
            live = [s for s in dict.fromkeys(cont_signs) if gallery.index.is_live(s)]
            if not live:
                if strict:
                    raise error_for(216680)
                return 0
            if self.delete_latency > 0:
                self._store.mark_deleted(name, live, now)
                for sign in live:
                    gallery.index.mark_deleted(sign, now)
                    gallery.pending.append((now, sign))
            else:
                self._store.purge(name, live)
                self._fingerprints.purge(name, live)
                for sign in live:
                    gallery.index.remove(sign)
                    if sign in gallery.keypoints:
                        gallery.keypoints.remove(sign)
        return len(live)

    def live_items(self, name: str) -> list[LiveItem]:
        """Every item of the gallery that is not deleted."""
        gallery = self._gallery(name)
        with gallery.lock:
            self._purge_expired(gallery, time.time())
            return [LiveItem(*row) for row in gallery.index.live_items()]

    def live_counts(self) -> dict[str, int]:
        """Number of live items per gallery."""
        counts: dict[str, int] = {}
        for name, gallery in self._galleries.items():
            with gallery.lock:
                counts[name] = gallery.index.live_count()
        return counts


def _query(image: DecodedImage) -> Query:
    """What a same-image check needs of ``image``."""
    return Query(image.cont_sign, features_of(image.thumb), fingerprint_of(image))


def _local_features(name: str, image: DecodedImage) -> LocalFeatures | None:
    """The keypoints an item of gallery ``name`` keeps of ``image`` (None: it keeps none)."""
    if name not in KEYPOINT_GALLERIES or image.grey is None:
        return None
    return local_features_of(image.grey)


def _best_first(hits: list[Hit]) -> list[Hit]:
    """Hits by falling score, each item once (with its best score)."""
    best: dict[str, Hit] = {}
    for hit in hits:
        held = best.get(hit.cont_sign)
        if held is None or hit.score > held.score:
            best[hit.cont_sign] = hit
    return sorted(best.values(), key=lambda hit: -hit.score)


def _depth(pn: int, rn: int) -> int:
    """How many ranked results a page needs, one more to know has_more."""
    return min(MAX_SEARCH_POSITION, pn + rn) + 1


def _page(hits: list[Hit], pn: int, rn: int) -> SearchPage:
    end = min(pn + rn, MAX_SEARCH_POSITION)
    visible = hits[:MAX_SEARCH_POSITION]
    return SearchPage(hits=visible[pn:end], has_more=len(visible) > end)
