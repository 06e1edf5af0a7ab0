"""The ledger's tables (schema version 6), as typed SQLAlchemy models.

files     one row per path seen under a library root: its stat signature, content and verdict
contents  (gallery, content hash) -> item; several contents may share one item (216681)
items     one gallery item: what the gallery has (cont_sign, have_*), what it should have
          (want_*), and the intent between the two (op), which is the durable work queue
plan_queue  contents whose files changed, waiting for the planner (durable across a crash)
tombstones  items syncd deleted (the gallery keeps them searchable for a while)
settings  small key/value state: the account pause, galleries stopped by setup errors
hosts     the syncd processes sharing this ledger, with a heartbeat
call_log  API calls sent, per host and minute: the console's chart, each host's rate
budget_days  calls spent from the daily budget, per quota day
ledger_counts  counts per library and per gallery, kept in step by the writes (schema v5;
          syncd.ledger.counters)

Times are seconds since the epoch (float). Paths are stored as bytes (UTF-8 with
surrogateescape), so names that are not valid UTF-8 round-trip exactly.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from syncd.paths.relpath import decode_relpath, encode_relpath
from syncd.paths.states import FILE_LIVE

#: the schema this code writes; schema.MIGRATIONS brings older ledgers up to it
SCHEMA_VERSION: Final = 6

Verdict = Literal["ok", "rejected", "skipped"]
#: ok: an image the gallery can take; rejected: not sendable (reason); skipped: not readable
VERDICT_OK: Final = "ok"
VERDICT_REJECTED: Final = "rejected"
VERDICT_SKIPPED: Final = "skipped"

Op = Literal["add", "update", "delete"]
ItemState = Literal["pending", "synced", "failed"]
ITEM_PENDING: Final = "pending"
ITEM_SYNCED: Final = "synced"
ITEM_FAILED: Final = "failed"

#: the rows of the partial indexes of the queue (schema v6), as SQL: queries that mean to walk
#: one of them spell the same terms (a planner uses a partial index only when the query's
#: conditions imply its own)
QUEUE_PREDICATE: Final = "state = 'pending' AND op IS NOT NULL"
CLAIMED_PREDICATE: Final = "claim_owner IS NOT NULL"

#: the lanes of the work queue: fresh changes first, a scan's backlog beside them
#: (docs/rules.md, Fresh changes first)
LANE_LIVE: Final = 0
LANE_BULK: Final = 1


class RelPath(TypeDecorator[str]):
    """A ``/``-separated relative path kept as bytes (BLOB in SQLite, bytea in PostgreSQL)."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else encode_relpath(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else decode_relpath(bytes(value))


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    """One row: the schema version the ledger's tables are at."""

    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)


class Library(Base):
    """A ``[[library]]`` the ledger has scanned, and the gallery it fed then."""

    __tablename__ = "libraries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    gallery: Mapped[str] = mapped_column(String(16))
    root: Mapped[str] = mapped_column(Text)
    #: the host whose config names this library (schema v4; None: written before v4)
    host: Mapped[str | None] = mapped_column(String(200))


class File(Base):
    """A path under a library root, with what the last look at it found."""

    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("library_id", "relpath", name="uq_files_library_relpath"),
        Index("ix_files_state_vanished_at", "state", "vanished_at"),
        Index("ix_files_verdict", "verdict"),  # schema v2: files refused, for status
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id", ondelete="CASCADE"))
    relpath: Mapped[str] = mapped_column(RelPath)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    inode: Mapped[int] = mapped_column(BigInteger)
    #: st_dev of the file when last read (schema v3; None before): with inode, size and
    #: mtime_ns it tells a moved file from a new one, so a move costs no re-read
    dev: Mapped[int | None] = mapped_column(BigInteger)
    #: sha256 hex of the bytes; None while not read (skipped)
    content_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    verdict: Mapped[str | None] = mapped_column(String(16))
    verdict_reason: Mapped[str | None] = mapped_column(Text)  # schema v2
    state: Mapped[str] = mapped_column(String(8), default=FILE_LIVE)
    first_seen_at: Mapped[float] = mapped_column(Float)
    vanished_at: Mapped[float | None] = mapped_column(Float)


class Item(Base):
    """One gallery item and the intent that brings it to what the disk implies.

    ``op`` is derived by :func:`intent_op` from the have/want columns and is None when the
    gallery already holds what it should. Workers claim rows with ``state = 'pending'``,
    ``next_attempt_at <= now``, no fresh claim, and no unfinished ``wait_for_item_id``.
    """

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("gallery", "cont_sign", name="uq_items_gallery_cont_sign"),
        Index("ix_items_due", "state", "next_attempt_at"),
        # schema v4: claims take the live lane first, each lane in its order
        Index("ix_items_lane", "state", "lane", "order_key"),
        # schema v6: ix_items_queue and ix_items_claimed, made after the table (see below)
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gallery: Mapped[str] = mapped_column(String(16))
    #: the gallery's name of the item; None until an add (or adoption) succeeded
    cont_sign: Mapped[str | None] = mapped_column(String(128))
    have_brief: Mapped[str | None] = mapped_column(Text)
    have_tags: Mapped[str | None] = mapped_column(String(32))
    want_present: Mapped[bool] = mapped_column(Boolean, default=True)
    want_brief: Mapped[str] = mapped_column(Text, default="")
    #: comma-separated ints: tags, or class_id1,class_id2 for product
    want_tags: Mapped[str] = mapped_column(String(32), default="")
    #: the file the brief names and an add reads (the oldest-known live copy)
    source_file_id: Mapped[int | None] = mapped_column(
        ForeignKey("files.id", ondelete="SET NULL"), index=True
    )
    op: Mapped[str | None] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(8), default=ITEM_PENDING)
    #: this intent waits until that item is synced or failed (docs/rules.md, Add before delete)
    wait_for_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="SET NULL"), index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    #: the gallery still holds an item of this image that syncd deleted: its add waits until
    #: then, epoch seconds (schema v4; docs/rules.md, Deletion latency). Not a failure, not a
    #: retry after errors.
    latency_until: Mapped[float | None] = mapped_column(Float)
    #: which lane the intent waits in (schema v4): LANE_LIVE for what the watcher
    #: saw a person do, LANE_BULK for a scan's backlog
    lane: Mapped[int] = mapped_column(SmallInteger, default=1)
    #: the order within the lane, smallest first: the bulk lane's newest files first (minus
    #: the file's mtime), the live lane's oldest change first (when it was planned)
    order_key: Mapped[float] = mapped_column(Float, default=0.0)
    claim_owner: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float, default=0.0)


#: schema v6: the partial indexes of the items, as DDL both engines take, made when the table
#: is. ix_items_queue: the queue alone, in claim order (a claim walks it and stops at its
#: limit); ix_items_claimed: the leases held, by holder (a renewal, the first lease to run
#: out). Not Index(..., postgresql_where=...): that would import SQLAlchemy's PostgreSQL
#: dialect at every start, a SQLite ledger's too (about 15 ms).
PARTIAL_INDEXES: Final = (
    f"CREATE INDEX ix_items_queue ON items (lane, order_key, id) WHERE {QUEUE_PREDICATE}",
    f"CREATE INDEX ix_items_claimed ON items (claim_owner, claimed_at) WHERE {CLAIMED_PREDICATE}",
)
for _ddl in PARTIAL_INDEXES:
    event.listen(Item.__table__, "after_create", DDL(_ddl))  # type: ignore[no-untyped-call]


class Content(Base):
    """A content (bytes hash) in a gallery, and the item that holds it there."""

    __tablename__ = "contents"
    gallery: Mapped[str] = mapped_column(String(16), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)


class PlanQueue(Base):
    """Contents whose files changed and whose items the planner has not decided yet.

    Written in the same transaction as the file rows, so a crash between a scan and the
    planner loses nothing. ``successor_hash``: the content that replaced this one at a path
    (its add goes first: docs/rules.md, Add before delete).
    """

    __tablename__ = "plan_queue"
    gallery: Mapped[str] = mapped_column(String(16), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    successor_hash: Mapped[str | None] = mapped_column(String(64))


class Tombstone(Base):
    """An item syncd deleted: the gallery may keep it searchable for ``delete_latency`` (v2)."""

    __tablename__ = "tombstones"
    __table_args__ = (
        Index("ix_tombstones_gallery_hash", "gallery", "content_hash"),
        Index("ix_tombstones_gallery_cont_sign", "gallery", "cont_sign"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gallery: Mapped[str] = mapped_column(String(16))
    cont_sign: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    deleted_at: Mapped[float] = mapped_column(Float)


class Setting(Base):
    """Small durable state as JSON text: the account pause, stopped galleries."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Float, default=0.0)


class Host(Base):
    """A syncd process on one file server, sharing this ledger (schema v4)."""

    __tablename__ = "hosts"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[float] = mapped_column(Float, default=0.0)
    #: the heartbeat: seconds since the epoch of its last sign of life
    last_seen: Mapped[float] = mapped_column(Float, default=0.0)
    version: Mapped[str] = mapped_column(String(32), default="")


class CallLog(Base):
    """API calls a host sent in one minute (schema v4): the console's chart, the daily
    budget and each host's recent rate are sums over these rows."""

    __tablename__ = "call_log"
    host: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: whole minutes since the epoch (UTC)
    minute: Mapped[int] = mapped_column(Integer, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class BudgetDay(Base):
    """Calls spent from the daily budget (``api.daily_budget``) on one quota day, all hosts
    together (schema v4). ``day``: the date in UTC+8, when the API's quota day starts."""

    __tablename__ = "budget_days"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


class LedgerCount(Base):
    """One shard's delta of one count (schema v5); a count is the sum over the shards.

    Per library: ``library_id`` set, ``gallery`` empty, ``kind`` one of LIBRARY_KINDS. Per
    gallery: ``library_id`` 0, ``kind`` ``item:<state>:<op>`` (op ``-`` when None).
    """

    __tablename__ = "ledger_counts"
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    library_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gallery: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


def intent_op(
    cont_sign: str | None,
    want_present: bool,
    want_brief: str,
    want_tags: str,
    have_brief: str | None,
    have_tags: str | None,
) -> Op | None:
    """The call that brings an item from what the gallery has to what it should have."""
    if want_present:
        if cont_sign is None:
            return "add"
        if (want_brief, want_tags) != (have_brief, have_tags):
            return "update"
        return None
    return "delete" if cont_sign is not None else None


def parse_tags(text: str | None) -> tuple[int, ...]:
    """``"100,11"`` -> ``(100, 11)``; the stored form of want/have tags."""
    return tuple(int(part) for part in text.split(",") if part) if text else ()


def format_tags(tags: tuple[int, ...]) -> str:
    """``(100, 11)`` -> ``"100,11"``."""
    return ",".join(str(tag) for tag in tags)
