"""Lookups of gallery items by what the gallery calls them (``cont_sign``) or by content:
what a worker needs after an answer, what ``search`` shows, what the lost-add audit asks."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from enum import Enum
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from syncd.ledger.models import VERDICT_OK, Content, File, Item, Library, format_tags
from syncd.ledger.tombstones import deleted_at, was_deleted
from syncd.paths.states import FILE_LIVE


def item_for_cont_sign(session: Session, gallery: str, cont_sign: str) -> int | None:
    """The ledger's item that holds ``cont_sign`` in ``gallery``, if any."""
    return session.scalar(
        select(Item.id).where(Item.gallery == gallery, Item.cont_sign == cont_sign)
    )


@functools.cache
def _holders_statement() -> Any:
    # built once; Core, no ORM setup: it runs once per group commit of add answers
    return select(Item.gallery, Item.cont_sign, Item.id).where(
        Item.cont_sign.in_(bindparam("signs", expanding=True))
    )


def holders_of(session: Session, signs: Sequence[str]) -> dict[tuple[str, str], int]:
    """(gallery, cont_sign) -> item id, for the items that hold any of ``signs``."""
    if not signs:
        return {}
    session.flush()  # a Core query does not autoflush
    rows = session.connection().execute(_holders_statement(), {"signs": list(signs)})
    return {(gallery, sign): item_id for gallery, sign, item_id in rows}


def holds(session: Session, item_id: int, cont_sign: str) -> bool:
    """Whether item ``item_id`` still names ``cont_sign`` (not deleted meanwhile)."""
    row = session.get(Item, item_id)
    return row is not None and row.cont_sign == cont_sign


def set_have(
    session: Session, item_id: int, brief: str, tags: tuple[int, ...], now: float
) -> None:
    """The gallery's item carries ``brief`` and ``tags`` now (an adopted item, merged)."""
    session.execute(
        update(Item)
        .where(Item.id == item_id)
        .values(have_brief=brief, have_tags=format_tags(tags), updated_at=now)
    )


class ContentState(Enum):
    """What the ledger makes of a content an add was sent for."""

    #: its item has a cont_sign: the add's answer was recorded after all
    KNOWN = "known"
    #: its add is still to come (that add adopts whatever a lost one made: 216681)
    WANTED = "wanted"
    #: nothing wants it any more
    GONE = "gone"


def content_state(session: Session, gallery: str, content_hash: str) -> ContentState:
    """Whether the ledger knows, still wants, or no longer wants a content of ``gallery``."""
    row = session.execute(
        select(Item.cont_sign, Item.want_present)
        .join(Content, Content.item_id == Item.id)
        .where(Content.gallery == gallery, Content.content_hash == content_hash)
    ).first()
    if row is None:
        return ContentState.GONE
    if row.cont_sign is not None:
        return ContentState.KNOWN
    return ContentState.WANTED if row.want_present else ContentState.GONE


def known_signs(session: Session, gallery: str, signs: Sequence[str]) -> set[str]:
    """Those of ``signs`` the ledger holds or deleted: the others it never knew."""
    if not signs:
        return set()
    known = {
        sign
        for sign in session.scalars(
            select(Item.cont_sign).where(Item.gallery == gallery, Item.cont_sign.in_(signs))
        )
        if sign is not None
    }
    return known | set(deleted_at(session, gallery, signs))


class HitState(Enum):
    """What the ledger knows of an item a search found."""

    #: the ledger holds it (its live local files are listed)
    HELD = "held"
    #: the ledger never knew it (another install's, or made by hand)
    UNKNOWN = "unknown"
    #: syncd deleted it, or is about to: the gallery still shows it for a while (its latency)
    DELETED = "deleted"


def item_paths(
    session: Session, gallery: str, cont_sign: str, libraries: Sequence[str]
) -> tuple[HitState, list[tuple[str, str]]]:
    """The state of the item ``cont_sign`` of ``gallery``, and the (library, relpath) of its
    live files within ``libraries``, oldest copy first."""
    item = session.scalars(
        select(Item).where(Item.gallery == gallery, Item.cont_sign == cont_sign)
    ).one_or_none()
    if item is None:
        deleted = was_deleted(session, gallery, cont_sign)
        return (HitState.DELETED if deleted else HitState.UNKNOWN), []
    if not item.want_present:
        return HitState.DELETED, []
    rows = session.execute(
        select(Library.name, File.relpath)
        .join(Library, File.library_id == Library.id)
        .join(
            Content,
            and_(Content.gallery == Library.gallery, Content.content_hash == File.content_hash),
        )
        .where(
            Content.item_id == item.id,
            File.state == FILE_LIVE,
            File.verdict == VERDICT_OK,
            Library.name.in_(libraries),
        )
        .order_by(File.first_seen_at, Library.name, File.relpath)
    )
    return HitState.HELD, [(lib, relpath) for lib, relpath in rows]
