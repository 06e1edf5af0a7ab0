"""What the web console reads from the ledger besides the status: files not synced, a file
by its id, the files of search hits, calls per minute. Every read goes through a
:class:`LedgerReader` the console keeps (read-only, short transactions that never take the
writer's lock from the sync); a ledger that does not exist yet reads as empty."""

from __future__ import annotations

from collections.abc import Sequence

from syncd.config import Config
from syncd.ledger.browse import (
    FailedFile,
    FailurePage,
    FileLocation,
    FileRef,
    LedgerReader,
    failed_files,
    file_by_id,
    files_of_item,
)
from syncd.ledger.calls import calls_per_minute

__all__ = [
    "FailedFile",
    "FailurePage",
    "FileLocation",
    "FileRef",
    "LedgerReader",
    "calls_by_minute",
    "failures",
    "file_at",
    "files_of_hits",
    "open_reader",
]


def open_reader(config: Config) -> LedgerReader:
    """Read-only sessions on the config's ledger (opened at the first read, once it
    exists); ``close()`` it when done."""
    return LedgerReader(config.ledger)


def failures(reader: LedgerReader, library: str | None = None, limit: int = 500) -> FailurePage:
    """Live files not synced for a reason (of ``library``, or all): how many, the first
    ``limit``."""
    if not reader.exists():
        return FailurePage(0, [])
    with reader.reading() as session:
        return failed_files(session, library, limit)


def file_at(reader: LedgerReader, file_id: int) -> FileLocation | None:
    """The live file ``file_id``; None when the ledger holds no such live file."""
    if not reader.exists():
        return None
    with reader.reading() as session:
        return file_by_id(session, file_id)


def files_of_hits(
    reader: LedgerReader, hits: Sequence[tuple[str, str]], libraries: Sequence[str]
) -> list[list[FileRef]]:
    """For each ``(gallery, cont_sign)`` of ``hits``, the live files of ``libraries`` that
    hold that item, oldest first; one list per hit, in one read."""
    if not reader.exists():
        return [[] for _ in hits]
    with reader.reading() as session:
        return [
            files_of_item(session, gallery, cont_sign, libraries) for gallery, cont_sign in hits
        ]


def calls_by_minute(reader: LedgerReader, since_minute: int) -> dict[int, int]:
    """All hosts' calls per minute (minutes since the epoch) from ``since_minute`` on."""
    if not reader.exists():
        return {}
    with reader.reading() as session:
        return calls_per_minute(session, since_minute)
