"""What the engine needs of an image-search provider: the gallery operations
(:class:`ImageSearch`) and the typed results they return.

The sync engine (``syncd/sync/``) and the one-shot commands call a gallery through this
protocol only; ``syncd.api.baidu.client.ImageSearchClient`` is Baidu's implementation. A second
provider is a client beside it with its own error table mapping its codes to the classes of
``syncd.errors`` (docs/architecture.md, A second provider).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from syncd.api.baidu.galleries import GalleryName


@dataclass(frozen=True)
class AddResult:
    """An image added: its ``cont_sign`` names the item from now on."""

    cont_sign: str
    log_id: int | None


@dataclass(frozen=True)
class SearchHit:
    """One item found: ``score`` is the similarity 0..1, ``brief`` what was stored with it."""

    cont_sign: str
    score: float
    brief: str


@dataclass(frozen=True)
class SearchPage:
    """One page of search results; ``has_more`` says whether a next page exists."""

    hits: list[SearchHit]
    result_num: int
    has_more: bool
    log_id: int | None


@dataclass(frozen=True)
class UpdateResult:
    """An item's brief/tags updated."""

    log_id: int | None


@dataclass(frozen=True)
class DeleteResult:
    """Items deleted (the gallery keeps them searchable for up to 4 hours)."""

    log_id: int | None


class ImageSearch(Protocol):
    """The gallery operations the engine calls; each raises a ``syncd.errors.ApiError``
    subclass that says what syncd does about a refusal (docs/rules.md, Error classes).

    Items are named by the key the gallery returns on add (``cont_sign``). An add of an
    image the gallery already holds raises ``ItemExistsError`` naming the holding item when
    the provider says; an update of an item the gallery lacks raises ``ItemMissingError``.
    """

    #: called right before every request leaves, its body encoded and signed (a repeat
    #: after a renewed token too): the caller's gate, which waits for the account's rate
    #: and records the departure as it returns; whatever it raises reaches the caller and
    #: nothing is sent. None: no pacing
    pace: Callable[[], object] | None

    def add(
        self, gallery: GalleryName, *, image: bytes, brief: str | None, tags: Sequence[int]
    ) -> AddResult:
        """Add one image with its brief and tags; the result names the new item."""
        ...

    def search(self, gallery: GalleryName, *, image: bytes, rn: int) -> SearchPage:
        """The first ``rn`` items most like ``image``, best first."""
        ...

    def update(
        self,
        gallery: GalleryName,
        *,
        cont_sign: str,
        brief: str | None,
        tags: Sequence[int] | None,
    ) -> UpdateResult:
        """Set the brief and tags of the item ``cont_sign``."""
        ...

    def delete(self, gallery: GalleryName, *, cont_signs: Sequence[str]) -> DeleteResult:
        """Delete a batch of items (at most ``syncd.api.baidu.limits.MAX_DELETE_BATCH``)."""
        ...

    def check(self, gallery: GalleryName | None = None) -> None:
        """Verify the credentials, and that ``gallery`` is set up when one is named."""
        ...

    def close(self) -> None:
        """Release the client's connections."""
        ...
