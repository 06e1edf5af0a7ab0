"""The settings store: small durable state shared by every process (and every host) on
the ledger, as JSON text under a key: the account pause (quota, budget) and the galleries
stopped by a setup error. ``syncd.gates.pause`` decides what goes in; ``status`` reads it.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from syncd.ledger.dialect import insert_or_ignore
from syncd.ledger.models import Setting

#: settings key of the account pause (JSON of syncd.pauses.AccountPause)
PAUSE_KEY = "account_pause"
#: settings key prefix of a gallery stopped by a setup error (JSON of GalleryStop)
GALLERY_STOP_PREFIX = "gallery_stop:"


def put_setting(session: Session, key: str, value: str, now: float) -> None:
    """Store ``value`` (JSON text) under ``key``."""
    session.execute(delete(Setting).where(Setting.key == key))
    session.execute(insert_or_ignore(Setting).values(key=key, value=value, updated_at=now))


def get_setting(session: Session, key: str) -> str | None:
    """The text stored under ``key``, or None."""
    return session.scalar(select(Setting.value).where(Setting.key == key))


def delete_setting(session: Session, key: str) -> None:
    """Forget ``key``."""
    session.execute(delete(Setting).where(Setting.key == key))


def settings_with_prefix(session: Session, prefix: str) -> dict[str, str]:
    """key -> text of every setting whose key starts with ``prefix``."""
    rows = session.execute(
        select(Setting.key, Setting.value).where(Setting.key.startswith(prefix, autoescape=True))
    )
    return {key: value for key, value in rows}
