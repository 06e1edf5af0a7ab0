"""Items syncd deleted: the gallery keeps them searchable, and refuses to take their image
again, for up to ``safety.delete_latency`` seconds (docs/rules.md, Deletion latency)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from syncd.ledger.models import Tombstone


def record_tombstones(
    session: Session, gallery: str, signs: Iterable[str], content_hash: str | None, now: float
) -> None:
    """The items ``signs`` of ``gallery`` (holding ``content_hash``) were deleted at ``now``."""
    rows = [
        {"gallery": gallery, "cont_sign": sign, "content_hash": content_hash, "deleted_at": now}
        for sign in signs
    ]
    if rows:
        session.execute(insert(Tombstone), rows)


def deleted_at(session: Session, gallery: str, signs: Sequence[str]) -> dict[str, float]:
    """cont_sign -> when syncd last deleted it (epoch s), for those of ``signs`` it deleted."""
    if not signs:
        return {}
    rows = session.execute(
        select(Tombstone.cont_sign, func.max(Tombstone.deleted_at))
        .where(Tombstone.gallery == gallery, Tombstone.cont_sign.in_(signs))
        .group_by(Tombstone.cont_sign)
    )
    return {sign: float(when) for sign, when in rows}


def content_deleted_at(session: Session, gallery: str, content_hash: str) -> float | None:
    """When syncd last deleted an item of this very content (epoch s), or None."""
    when = session.scalar(
        select(func.max(Tombstone.deleted_at)).where(
            Tombstone.gallery == gallery, Tombstone.content_hash == content_hash
        )
    )
    return None if when is None else float(when)


def was_deleted(session: Session, gallery: str, cont_sign: str) -> bool:
    """Whether syncd ever deleted the item ``cont_sign`` of ``gallery``."""
    found = session.scalar(
        select(Tombstone.id)
        .where(Tombstone.gallery == gallery, Tombstone.cont_sign == cont_sign)
        .limit(1)
    )
    return found is not None
