"""Baidu's gallery kinds: where each one's endpoints live and how it tags items.

A gallery is data, not a subclass: its URL prefix and the fields it tags items with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

GalleryName = Literal["same_hq", "similar", "product"]
Operation = Literal["add", "search", "update", "delete"]

GALLERY_NAMES: Final[tuple[GalleryName, ...]] = ("same_hq", "similar", "product")
OPERATIONS: Final[tuple[Operation, ...]] = ("add", "search", "update", "delete")

#: where the token auth mode gets its access token
TOKEN_PATH: Final = "/oauth/2.0/token"


@dataclass(frozen=True)
class Gallery:
    """One gallery kind of the API: where its endpoints live and how it tags items."""

    name: GalleryName
    prefix: str
    #: "tags" (up to two ints, comma separated) or "class_id" (class_id1/class_id2)
    tag_style: Literal["tags", "class_id"]
    #: whether add requires a brief (the document marks it required for same_hq only)
    brief_required: bool

    def path(self, op: Operation) -> str:
        """The URL path of ``op`` on this gallery, e.g. ``/rest/2.0/realtime_search/same_hq/add``."""
        return f"{self.prefix}/{op}"


GALLERIES: Final[dict[GalleryName, Gallery]] = {
    "same_hq": Gallery("same_hq", "/rest/2.0/realtime_search/same_hq", "tags", True),
    "similar": Gallery(
        "similar", "/rest/2.0/image-classify/v1/realtime_search/similar", "tags", False
    ),
    "product": Gallery(
        "product", "/rest/2.0/image-classify/v1/realtime_search/product", "class_id", False
    ),
}
