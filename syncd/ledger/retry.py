"""``syncd retry`` in the ledger: failed files and items queued again, pauses lifted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from syncd.ledger.backlog import backing_off
from syncd.ledger.files import rows_at_or_below
from syncd.ledger.models import ITEM_FAILED, VERDICT_OK, Content, File, Item, Library
from syncd.ledger.queue import retry_failed
from syncd.ledger.settings import (
    GALLERY_STOP_PREFIX,
    PAUSE_KEY,
    delete_setting,
    get_setting,
    settings_with_prefix,
)
from syncd.paths.relpath import encode_relpath
from syncd.paths.states import FILE_LIVE


@dataclass(frozen=True)
class Requeued:
    """What ``retry`` queued again: failed items, refused files to read again, items that
    waited on a backoff after errors, and the pauses it lifted (said in words)."""

    items: int
    files: int
    waiting: int
    lifted: list[str] = field(default_factory=list)


def _under(relpath: str, prefixes: Sequence[str]) -> bool:
    return any(p == "" or relpath == p or relpath.startswith(p + "/") for p in prefixes)


def queue_failures_again(
    session: Session,
    libraries: Sequence[str],
    galleries: Sequence[str],
    prefixes: Mapping[str, Sequence[str]] | None,
    now: float,
) -> Requeued:
    """Make the failed files of ``libraries`` due again at ``now`` (epoch s), with the items
    waiting on a backoff; only those at or under ``prefixes`` (library -> relative paths)
    when given. Refused files get a signature no stat matches, so the next scan reads and
    judges them again. Without ``prefixes`` the backing-off deletes of ``galleries`` (which
    have no live file) are due again too. A quota pause and gallery stops are lifted."""
    query = (
        select(Library.name, File.id, File.relpath, File.verdict, Item.id, Item.state,
               backing_off())  # fmt: skip
        .join(Library, File.library_id == Library.id)
        .outerjoin(
            Content,
            and_(Content.gallery == Library.gallery, Content.content_hash == File.content_hash),
        )
        .outerjoin(Item, Item.id == Content.item_id)
        .where(Library.name.in_(libraries), File.state == FILE_LIVE)
    )
    if prefixes is not None:
        # only the rows at or below the paths named: a range of the (library, path) index
        named = select(Library.name, Library.id).where(Library.name.in_(libraries))
        ids = {name: library_id for name, library_id in session.execute(named)}
        terms = [
            rows_at_or_below(ids[lib], [encode_relpath(p) for p in paths])
            for lib, paths in prefixes.items()
            if lib in ids and "" not in paths
        ]
        whole = [ids[lib] for lib, paths in prefixes.items() if lib in ids and "" in paths]
        query = query.where(or_(*terms, File.library_id.in_(whole)))
    rows = session.execute(query)
    items: set[int] = set()
    waiting: set[int] = set()
    files: list[int] = []
    for lib, file_id, relpath, verdict, item_id, state, waits in rows:
        if prefixes is not None and not _under(relpath, prefixes.get(lib, ())):
            continue
        if verdict != VERDICT_OK:
            files.append(file_id)
        elif item_id is not None and state == ITEM_FAILED:
            items.add(item_id)
        elif item_id is not None and waits:
            waiting.add(item_id)
    if prefixes is None:
        waiting.update(
            session.scalars(select(Item.id).where(Item.gallery.in_(galleries), backing_off()))
        )
    retry_failed(session, sorted(items | waiting), now)
    if files:
        session.execute(update(File).where(File.id.in_(files)).values(mtime_ns=-1))
    return Requeued(len(items), len(files), len(waiting), lift_pauses(session))


def lift_pauses(session: Session) -> list[str]:
    """Lift the account pause and every gallery stop: the next call tells whether their
    cause is gone. What was lifted, in words."""
    lifted = []
    if get_setting(session, PAUSE_KEY) is not None:
        delete_setting(session, PAUSE_KEY)
        lifted.append("the quota pause")
    for key in settings_with_prefix(session, GALLERY_STOP_PREFIX):
        delete_setting(session, key)
        lifted.append(f"the stop of gallery {key.removeprefix(GALLERY_STOP_PREFIX)}")
    return lifted
