"""One syncing process per ledger: an advisory lock on a file beside it.

While a process holds it, no other process makes calls for that ledger, so every claim
found in the ledger that is not this process's own was left by one that died (``kill -9``)
and can be taken back at once instead of after a lease. The kernel drops the lock when
its holder dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from syncd.config import HostConfig
from syncd.errors import SyncdError


class LedgerBusy(SyncdError):
    """Another syncd process is syncing this ledger."""


class SyncLock:
    """The exclusive sync lock of the ledger at ``ledger_path`` (``<ledger>.lock``)."""

    def __init__(self, ledger_path: Path, host: HostConfig | None = None) -> None:
        # one lock per host: hosts sharing a ledger sync side by side
        self.path = (
            ledger_path.with_name(ledger_path.name + ".lock")
            if host is None
            else host.local_path(ledger_path, ".lock")
        )
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock at once or raise LedgerBusy naming the holder's pid."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise LedgerBusy(
                f"{self.path.with_suffix('')}: another syncd process (pid {holder}) is syncing "
                "this ledger; stop it or wait for it to finish"
            ) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock back (closing the file releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SyncLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
