"""The ledger's tables (schema version 6), and the typed classes mapped onto them.

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

from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import registry

from syncd.paths.relpath import decode_relpath, encode_relpath
from syncd.paths.states import FILE_LIVE

if TYPE_CHECKING:
    from sqlalchemy import FromClause
    from sqlalchemy.orm import Mapped

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


# -- the tables ----------------------------------------------------------------------------
#
# Written as tables first, then each class below is mapped onto its table (an imperative
# mapping): the declarative mapping this replaced evaluated every column's annotation and
# scanned every class at each start, about 6 ms of each command that opens the ledger. The
# tables, their columns, indexes and the DDL they make are the same.

metadata = MetaData()

schema_version_table = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
)

libraries_table = Table(
    "libraries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("gallery", String(16), nullable=False),
    Column("root", Text, nullable=False),
    # the host whose config names this library (schema v4; NULL: written before v4)
    Column("host", String(200)),
)

files_table = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("library_id", ForeignKey("libraries.id", ondelete="CASCADE"), nullable=False),
    Column("relpath", RelPath, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("inode", BigInteger, nullable=False),
    # st_dev of the file when last read (schema v3; NULL before): with inode, size and
    # mtime_ns it tells a moved file from a new one, so a move costs no re-read
    Column("dev", BigInteger),
    # sha256 hex of the bytes; NULL while not read (skipped)
    Column("content_hash", String(64), index=True),
    Column("verdict", String(16)),
    Column("verdict_reason", Text),  # schema v2
    Column("state", String(8), nullable=False, default=FILE_LIVE),
    Column("first_seen_at", Float, nullable=False),
    Column("vanished_at", Float),
    UniqueConstraint("library_id", "relpath", name="uq_files_library_relpath"),
    Index("ix_files_state_vanished_at", "state", "vanished_at"),
    Index("ix_files_verdict", "verdict"),  # schema v2: files refused, for status
)

items_table = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("gallery", String(16), nullable=False),
    # the gallery's name of the item; NULL until an add (or adoption) succeeded
    Column("cont_sign", String(128)),
    Column("have_brief", Text),
    Column("have_tags", String(32)),
    Column("want_present", Boolean, nullable=False, default=True),
    Column("want_brief", Text, nullable=False, default=""),
    # comma-separated ints: tags, or class_id1,class_id2 for product
    Column("want_tags", String(32), nullable=False, default=""),
    # the file the brief names and an add reads (the oldest-known live copy)
    Column("source_file_id", ForeignKey("files.id", ondelete="SET NULL"), index=True),
    Column("op", String(8)),
    Column("state", String(8), nullable=False, default=ITEM_PENDING),
    # this intent waits until that item is synced or failed (docs/rules.md, Add before delete)
    Column("wait_for_item_id", ForeignKey("items.id", ondelete="SET NULL"), index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False, default=0.0),
    Column("error_code", Integer),
    Column("error_message", Text),
    # the gallery still holds an item of this image that syncd deleted: its add waits until
    # then, epoch seconds (schema v4; docs/rules.md, Deletion latency). Not a failure, not a
    # retry after errors.
    Column("latency_until", Float),
    # which lane the intent waits in (schema v4): LANE_LIVE for what the watcher saw a
    # person do, LANE_BULK for a scan's backlog
    Column("lane", SmallInteger, nullable=False, default=1),
    # the order within the lane, smallest first: the bulk lane's newest files first (minus
    # the file's mtime), the live lane's oldest change first (when it was planned)
    Column("order_key", Float, nullable=False, default=0.0),
    Column("claim_owner", String(64)),
    Column("claimed_at", Float),
    Column("updated_at", Float, nullable=False, default=0.0),
    UniqueConstraint("gallery", "cont_sign", name="uq_items_gallery_cont_sign"),
    Index("ix_items_due", "state", "next_attempt_at"),
    # schema v4: claims take the live lane first, each lane in its order
    Index("ix_items_lane", "state", "lane", "order_key"),
    # schema v6: ix_items_queue and ix_items_claimed, made after the table (see below)
)

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
    event.listen(items_table, "after_create", DDL(_ddl))  # type: ignore[no-untyped-call]

contents_table = Table(
    "contents",
    metadata,
    Column("gallery", String(16), primary_key=True),
    Column("content_hash", String(64), primary_key=True),
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), nullable=False, index=True),
)

plan_queue_table = Table(
    "plan_queue",
    metadata,
    Column("gallery", String(16), primary_key=True),
    Column("content_hash", String(64), primary_key=True),
    Column("successor_hash", String(64)),
)

tombstones_table = Table(
    "tombstones",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("gallery", String(16), nullable=False),
    Column("cont_sign", String(128), nullable=False),
    Column("content_hash", String(64)),
    Column("deleted_at", Float, nullable=False),
    Index("ix_tombstones_gallery_hash", "gallery", "content_hash"),
    Index("ix_tombstones_gallery_cont_sign", "gallery", "cont_sign"),
)

settings_table = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False, default=0.0),
)

hosts_table = Table(
    "hosts",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("pid", Integer, nullable=False, default=0),
    Column("started_at", Float, nullable=False, default=0.0),
    # the heartbeat: seconds since the epoch of its last sign of life
    Column("last_seen", Float, nullable=False, default=0.0),
    Column("version", String(32), nullable=False, default=""),
)

call_log_table = Table(
    "call_log",
    metadata,
    Column("host", String(200), primary_key=True),
    # whole minutes since the epoch (UTC)
    Column("minute", Integer, primary_key=True),
    Column("calls", Integer, nullable=False, default=0),
)

budget_days_table = Table(
    "budget_days",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("used", Integer, nullable=False, default=0),
)

ledger_counts_table = Table(
    "ledger_counts",
    metadata,
    Column("shard", SmallInteger, primary_key=True),
    Column("library_id", BigInteger, primary_key=True),
    Column("gallery", String(16), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("n", BigInteger, nullable=False, default=0),
)


# -- the mapped classes --------------------------------------------------------------------
#
# Each attribute is the column of the same name in the class's table; the annotations are
# for the type checker only (nothing reads them at run time).


class Base:
    """The mapped classes' base: :attr:`metadata` holds every table of the ledger."""

    metadata: ClassVar[MetaData] = metadata
    __tablename__: ClassVar[str]
    __table__: ClassVar[FromClause]

    def __init__(self, **kwargs: Any) -> None:
        """A new row: each keyword sets the attribute of that name (as a declarative
        mapping's constructor does); one the class does not have is a TypeError."""
        cls = type(self)
        for key, value in kwargs.items():
            if not hasattr(cls, key):
                raise TypeError(f"{key!r} is an invalid keyword argument for {cls.__name__}")
            setattr(self, key, value)


class SchemaVersion(Base):
    """One row: the schema version the ledger's tables are at."""

    version: Mapped[int]


class Library(Base):
    """A ``[[library]]`` the ledger has scanned, and the gallery it fed then."""

    id: Mapped[int]
    name: Mapped[str]
    gallery: Mapped[str]
    root: Mapped[str]
    host: Mapped[str | None]


class File(Base):
    """A path under a library root, with what the last look at it found."""

    id: Mapped[int]
    library_id: Mapped[int]
    relpath: Mapped[str]
    size: Mapped[int]
    mtime_ns: Mapped[int]
    inode: Mapped[int]
    dev: Mapped[int | None]
    content_hash: Mapped[str | None]
    verdict: Mapped[str | None]
    verdict_reason: Mapped[str | None]
    state: Mapped[str]
    first_seen_at: Mapped[float]
    vanished_at: Mapped[float | None]


class Item(Base):
    """One gallery item and the intent that brings it to what the disk implies.

    ``op`` is derived by :func:`intent_op` from the have/want columns and is None when the
    gallery already holds what it should. Workers claim rows with ``state = 'pending'``,
    ``next_attempt_at <= now``, no fresh claim, and no unfinished ``wait_for_item_id``.
    """

    id: Mapped[int]
    gallery: Mapped[str]
    cont_sign: Mapped[str | None]
    have_brief: Mapped[str | None]
    have_tags: Mapped[str | None]
    want_present: Mapped[bool]
    want_brief: Mapped[str]
    want_tags: Mapped[str]
    source_file_id: Mapped[int | None]
    op: Mapped[str | None]
    state: Mapped[str]
    wait_for_item_id: Mapped[int | None]
    attempts: Mapped[int]
    next_attempt_at: Mapped[float]
    error_code: Mapped[int | None]
    error_message: Mapped[str | None]
    latency_until: Mapped[float | None]
    lane: Mapped[int]
    order_key: Mapped[float]
    claim_owner: Mapped[str | None]
    claimed_at: Mapped[float | None]
    updated_at: Mapped[float]


class Content(Base):
    """A content (bytes hash) in a gallery, and the item that holds it there."""

    gallery: Mapped[str]
    content_hash: Mapped[str]
    item_id: Mapped[int]


class PlanQueue(Base):
    """Contents whose files changed and whose items the planner has not decided yet.

    Written in the same transaction as the file rows, so a crash between a scan and the
    planner loses nothing. ``successor_hash``: the content that replaced this one at a path
    (its add goes first: docs/rules.md, Add before delete).
    """

    gallery: Mapped[str]
    content_hash: Mapped[str]
    successor_hash: Mapped[str | None]


class Tombstone(Base):
    """An item syncd deleted: the gallery may keep it searchable for ``delete_latency`` (v2)."""

    id: Mapped[int]
    gallery: Mapped[str]
    cont_sign: Mapped[str]
    content_hash: Mapped[str | None]
    deleted_at: Mapped[float]


class Setting(Base):
    """Small durable state as JSON text: the account pause, stopped galleries."""

    key: Mapped[str]
    value: Mapped[str]
    updated_at: Mapped[float]


class Host(Base):
    """A syncd process on one file server, sharing this ledger (schema v4)."""

    name: Mapped[str]
    pid: Mapped[int]
    started_at: Mapped[float]
    last_seen: Mapped[float]
    version: Mapped[str]


class CallLog(Base):
    """API calls a host sent in one minute (schema v4): the console's chart, the daily
    budget and each host's recent rate are sums over these rows."""

    host: Mapped[str]
    minute: Mapped[int]
    calls: Mapped[int]


class BudgetDay(Base):
    """Calls spent from the daily budget (``api.daily_budget``) on one quota day, all hosts
    together (schema v4). ``day``: the date in UTC+8, when the API's quota day starts."""

    day: Mapped[str]
    used: Mapped[int]


class LedgerCount(Base):
    """One shard's delta of one count (schema v5); a count is the sum over the shards.

    Per library: ``library_id`` set, ``gallery`` empty, ``kind`` one of LIBRARY_KINDS. Per
    gallery: ``library_id`` 0, ``kind`` ``item:<state>:<op>`` (op ``-`` when None).
    """

    shard: Mapped[int]
    library_id: Mapped[int]
    gallery: Mapped[str]
    kind: Mapped[str]
    n: Mapped[int]


_mapper_registry = registry(metadata=metadata)
for _cls, _table in (
    (SchemaVersion, schema_version_table),
    (Library, libraries_table),
    (File, files_table),
    (Item, items_table),
    (Content, contents_table),
    (PlanQueue, plan_queue_table),
    (Tombstone, tombstones_table),
    (Setting, settings_table),
    (Host, hosts_table),
    (CallLog, call_log_table),
    (BudgetDay, budget_days_table),
    (LedgerCount, ledger_counts_table),
):
    _cls.__table__ = _table
    _cls.__tablename__ = _table.name
    _mapper_registry.map_imperatively(_cls, _table)


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
