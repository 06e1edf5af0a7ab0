"""The heartbeat of a host in a shared ledger while it syncs.

``Heartbeat`` runs beside the sync workers (``syncd run``, and a ``reconcile``'s sync): every
:data:`BEAT_EVERY` seconds, in one short transaction, it says the host is alive, renews the
leases of the intents this process holds, and adds the calls made since the last beat to
``call_log``; then it takes up the quota pause and gallery stops other hosts recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from syncd.ledger.calls import record_calls
from syncd.ledger.hosts import beat
from syncd.ledger.queue import renew_claims
from syncd.ledger.schema import Ledger

if TYPE_CHECKING:
    from syncd.gates.pause import AccountState
    from syncd.sync.context import Tally

log = logging.getLogger("syncd.sync")

#: seconds between two heartbeats: lease renewal, and how soon a pause seen by another host
#: holds here (a lease lasts syncd.ledger.intents.CLAIM_STALE_AFTER)
BEAT_EVERY = 2.0


class Heartbeat:
    """The heartbeat of host ``host`` for the sync process whose claims are ``owner``'s."""

    def __init__(
        self,
        ledger: Ledger,
        host: str,
        owner: str,
        account: AccountState,
        tally: Tally,
        *,
        every: float = BEAT_EVERY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._host = host
        self._owner = owner
        self._account = account
        self._tally = tally
        self._every = every
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: calls already written to call_log
        self._counted = 0
        self._failing = False

    def start(self) -> None:
        """Beat now, then every ``every`` seconds on a thread of its own."""
        self.beat()
        self._thread = threading.Thread(target=self._loop, name="syncd-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; the calls made since the last beat are counted first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.beat(follow=False)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self.beat()

    def beat(self, follow: bool = True) -> None:
        """One heartbeat (never raises: a ledger that cannot be reached is said once)."""
        now = self._clock()
        with self._tally.lock:
            total = sum(self._tally.calls.values())
        try:
            with self._ledger.transaction() as session:
                beat(session, self._host, now)
                renew_claims(session, self._owner, now)
                record_calls(session, self._host, int(now // 60), total - self._counted)
            self._counted = total
            if follow:
                self._account.follow()
        except Exception as exc:
            if not self._failing:
                log.warning("heartbeat: the ledger cannot be reached (%s); trying again",
                            type(exc).__name__)  # fmt: skip
            self._failing = True
            return
        if self._failing:
            log.info("heartbeat: the ledger answers again")
            self._failing = False
