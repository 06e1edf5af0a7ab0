"""Group commit of call answers: a worker hands its record over and goes on calling.

Every answer is recorded in the ledger as soon as no other commit is under way, so a
crash loses at most the answers of the last moments, and repeating those calls is safe: a
repeated add answers 216681 (adopted), a repeated delete answers nothing or
216680 (success), a repeated update changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from syncd.ledger.schema import Ledger, LedgerSession

log = logging.getLogger("syncd.sync")

#: one recorded answer: writes into the group's session; may return work for after the commit
Record = Callable[[LedgerSession], Callable[[], None] | None]


@runtime_checkable
class GroupRecord(Protocol):
    """A record whose kind is written for the whole group at once (add answers)."""

    def __call__(self, session: LedgerSession) -> Callable[[], None] | None: ...

    def record_group(self, session: LedgerSession, group: Sequence[GroupRecord]) -> None:
        """Write every member of ``group`` (all of this record's kind) that can be."""

    def reset(self) -> None:
        """Forget what a group transaction that failed did (it is recorded on its own)."""


class Recorder:
    """Commits the answers of calls in groups ("group commit").

    A worker hands its record over and goes on with its next call; whichever worker finds
    no commit under way commits every record handed over meanwhile in one transaction.
    A record lost to a crash only repeats a call, which is safe (module docstring).
    ``on_commit`` runs after each commit (new work may be due: wake the workers).
    """

    def __init__(self, ledger: Ledger, on_commit: Callable[[], None] = lambda: None) -> None:
        self._ledger = ledger
        self.on_commit = on_commit
        self._lock = threading.Lock()
        self._pending: list[Record] = []
        self._committing = False

    def submit(self, record: Record) -> None:
        """Have ``record`` committed soon (now, if no other worker is committing)."""
        with self._lock:
            self._pending.append(record)
            if self._committing:
                return
            self._committing = True
        try:
            while True:
                with self._lock:
                    group, self._pending = self._pending, []
                    if not group:
                        self._committing = False
                        return
                self._commit(group)
        except BaseException:
            with self._lock:
                self._committing = False
            raise

    def _commit(self, group: list[Record]) -> None:
        """Commit ``group`` in one transaction; if that fails, each record on its own (a
        record that still fails is logged and left out: its call is repeated later)."""
        after: list[Callable[[], None]] = []
        kinds: dict[type, list[GroupRecord]] = {}
        for record in group:
            if isinstance(record, GroupRecord):
                kinds.setdefault(type(record), []).append(record)
        try:
            with self._ledger.transaction() as session:
                for members in kinds.values():
                    members[0].record_group(session, members)
                after = [a for record in group if (a := record(session)) is not None]
        except Exception:
            log.warning("a group of %d %s failed to commit; committing one by one", len(group),
                        "answer" if len(group) == 1 else "answers", exc_info=True)  # fmt: skip
            after = []
            for members in kinds.values():
                for member in members:
                    member.reset()
            for record in group:
                try:
                    with self._ledger.transaction() as session:
                        action = record(session)
                except Exception:
                    log.exception("an answer could not be recorded; its call will be repeated")
                    continue
                if action is not None:
                    after.append(action)
        for action in after:
            try:
                action()
            except Exception:
                log.exception("work after recording an answer failed")
        self.on_commit()
