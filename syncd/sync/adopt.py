"""What to do when an add answers 216681 "item exist" (docs/rules.md, Duplicate adds).

The real API's answer names the item (``cont_sign``): :func:`decide_named_adoption`
adopts it with no other call. An answer that does not name it is followed by a search
with the image, and :func:`decide_adoption` chooses among the hits.

The gallery already holds the image: a copy under other content, a previous install, a
lost ledger, or an item syncd itself deleted less than the deletion latency ago (the API
keeps deleted items for up to four hours and refuses to re-add them meanwhile).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

#: a hit scoring at least this is taken for the very image the add sent (scores are 0..1)
ADOPT_MIN_SCORE = 0.9
#: adds of one content that may answer 216681 before it is marked failed (never loop)
MAX_ADOPTION_ROUNDS = 4


class Hit(Protocol):
    """The fields of a search hit the decision reads."""

    @property
    def cont_sign(self) -> str: ...

    @property
    def score(self) -> float: ...

    @property
    def brief(self) -> str: ...


@dataclass(frozen=True)
class Adopt:
    """Take over the gallery's item ``cont_sign`` (then update its brief/tags); ``brief``
    as the gallery shows it, None when the answer did not say."""

    cont_sign: str
    brief: str | None


@dataclass(frozen=True)
class AddAfter:
    """The image is one syncd deleted lately: add it again at ``when`` (aware UTC)."""

    when: datetime


@dataclass(frozen=True)
class NoMatch:
    """The gallery says the image exists but no hit is close enough to be it."""


AdoptionDecision = Adopt | AddAfter | NoMatch


def decide_adoption(
    hits: Sequence[Hit],
    want_brief: str,
    deleted_at: Mapping[str, datetime],
    now: datetime,
    delete_latency: float,
    content_deleted_at: datetime | None = None,
    min_score: float = ADOPT_MIN_SCORE,
) -> AdoptionDecision:
    """Choose between adopting a hit, waiting out a recent delete, or giving up.

    ``deleted_at`` maps cont_signs syncd deleted (its tombstones) to when; one deleted less
    than ``delete_latency`` seconds before ``now`` is a ghost the gallery still shows.
    ``content_deleted_at`` is when syncd last deleted an item of this very content.
    Among live hits scoring at least ``min_score`` the one already carrying the wanted
    brief wins, then the highest score.
    """
    window = timedelta(seconds=delete_latency)
    close = [hit for hit in hits if hit.score >= min_score]
    ghosts: list[datetime] = []
    live: list[Hit] = []
    for hit in close:
        when = deleted_at.get(hit.cont_sign)
        if when is not None and now < when + window:
            ghosts.append(when)
        else:
            live.append(hit)
    if live:
        best = max(live, key=lambda hit: (hit.brief == want_brief, hit.score))
        return Adopt(cont_sign=best.cont_sign, brief=best.brief)
    if content_deleted_at is not None and now < content_deleted_at + window:
        ghosts.append(content_deleted_at)
    if ghosts:
        return AddAfter(when=max(ghosts) + window)
    return NoMatch()


def decide_named_adoption(
    cont_sign: str,
    deleted_at: datetime | None,
    now: datetime,
    delete_latency: float,
) -> Adopt | AddAfter:
    """Adopt the item a 216681 answer names, unless syncd deleted that very item less than
    ``delete_latency`` seconds before ``now`` (``deleted_at``, aware UTC): the gallery still
    holds its ghost and takes the image again after the window (the tombstone rule wins)."""
    window = timedelta(seconds=delete_latency)
    if deleted_at is not None and now < deleted_at + window:
        return AddAfter(when=deleted_at + window)
    return Adopt(cont_sign=cont_sign, brief=None)
