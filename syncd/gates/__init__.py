"""The gates on calls: what every call passes before it leaves, and what keeps one process
per host syncing. Each module is named for what it gates:

- ``rate``: this process's pacing (at most the rate in any sliding second, no burst);
- ``shared_rate``: the account's rate shared by every host of the ledger (slots booked in
  the ledger's ``call_slots``), slowed by a rate error and recovered;
- ``budget``: ``api.daily_budget``, the calls a quota day may spend;
- ``pause``: the account paused for its daily quota, galleries stopped by a setup error;
- ``backoff``: how long a transient failure waits before the next try;
- ``heartbeat``: this host's sign of life and the leases on its claimed work;
- ``host_lock``: one syncing process per host and ledger.

The engine (``syncd.sync``) asks these gates; none of them makes a call. No SQL here: the
state they share lives in ``syncd.ledger``.
"""
