"""``syncd search IMAGE``: search the gallery with a local image and name the local files
of each hit (README, Commands). Items syncd deleted stay searchable in the gallery for
hours (docs/rules.md, Deletion latency); they are hidden here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from syncd.api.baidu.galleries import GalleryName
from syncd.api.baidu.limits import RN_MAX
from syncd.api.port import SearchHit
from syncd.app.gallery import open_client
from syncd.config import Config
from syncd.ledger.items import HitState, item_paths
from syncd.ledger.schema import open_ledger
from syncd.paths.relpath import printable_relpath
from syncd.scan.prepare import ImageRejected, prepare_image
from syncd.scan.scanner import select_libraries

__all__ = ["Found", "ImageRejected", "search_image"]

#: hits asked for beyond ``top``, to make up for hidden (deleted) items
HIDDEN_MARGIN = 100


@dataclass(frozen=True)
class Found:
    """One hit: the gallery's item, its score (0..1) and the local files that hold it."""

    score: float
    cont_sign: str
    brief: str
    gallery: str
    paths: list[str] = field(default_factory=list)
    #: the library of each of ``paths``, in the same order
    libraries: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """The ``search --json`` form."""
        return {
            "score": self.score,
            "cont_sign": self.cont_sign,
            "brief": self.brief,
            "paths": self.paths,
        }


def search_image(
    config: Config,
    image: Path,
    library: str | None = None,
    top: int = 10,
    min_score: float = 0.0,
) -> list[Found]:
    """The best ``top`` hits for the image file ``image`` in the galleries the libraries
    feed (only ``library``'s when given), best first; hits scoring below ``min_score``
    (0..1) are left out.

    Raises ImageRejected (not an image the gallery takes), OSError (unreadable),
    ConfigError, and the ApiError of a failed call.
    """
    libraries = select_libraries(config, [library] if library else [])
    prepared = prepare_image(image, "downscale")
    galleries: list[GalleryName] = sorted({lib.gallery for lib in libraries})
    rn = min(RN_MAX, top + HIDDEN_MARGIN)
    hits: list[tuple[str, SearchHit]] = []
    with open_client(config) as client:
        for gallery in galleries:
            page = client.search(gallery, image=prepared.data, rn=rn)
            hits += [(gallery, hit) for hit in page.hits]
    hits = sorted((pair for pair in hits if pair[1].score >= min_score), key=lambda p: -p[1].score)
    found = _with_paths(config, hits, [lib.name for lib in libraries], library is not None)
    return found[:top]


def _with_paths(
    config: Config,
    hits: Sequence[tuple[str, SearchHit]],
    libraries: Sequence[str],
    only_these: bool,
) -> list[Found]:
    """Hits with the local paths the ledger knows; hits of deleted items left out.

    ``only_these``: a hit the ledger maps to files of other libraries only is left out.
    """
    if not config.ledger.exists():
        return [Found(h.score, h.cont_sign, h.brief, g) for g, h in hits]
    roots = {lib.name: Path(os.path.abspath(lib.root)) for lib in config.libraries}
    ledger = open_ledger(config.ledger, create=False)
    try:
        with ledger.transaction() as session:
            found = []
            for gallery, hit in hits:
                state, rows = item_paths(session, gallery, hit.cont_sign, libraries)
                if state is HitState.DELETED:
                    continue  # deleted by syncd: the gallery still shows it for a while
                if only_these and state is HitState.HELD and not rows:
                    continue
                # shown to people and in JSON: undecodable bytes as \xNN (printable_relpath)
                paths = [
                    printable_relpath(str(roots[lib] / relpath) if lib in roots else relpath)
                    for lib, relpath in rows
                ]
                libs = [lib for lib, _ in rows]
                found.append(Found(hit.score, hit.cont_sign, hit.brief, gallery, paths, libs))
            return found
    finally:
        ledger.close()
