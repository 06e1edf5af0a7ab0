"""The sync stage: the ledger's intents -> API calls, with the fewest calls the API allows.

- ``plan``: the planner (pure): disk facts -> what the gallery should hold;
- ``engine``: ``SyncEngine``, the workers (service: start/stop/wake; reconcile:
  run_until_idle); ``workers``: one intent's calls and the recording of their answers;
- ``rate`` (shared AIMD pacing), ``backoff`` (per-intent retry delays), ``batching``
  (deletes of up to 1000), ``adopt`` (216681), ``pause`` + ``account`` (quota pauses,
  stopped galleries), ``lock`` (one syncing process per ledger);
- ``endpoint`` (the configured or embedded gallery), ``reconcile`` (reconcile, retry,
  check), ``search`` (``syncd search``).
"""
