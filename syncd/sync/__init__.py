"""The sync stage: the ledger's intents -> API calls, with the fewest calls the API allows.

- ``engine``: ``SyncEngine``, the workers (service: start/stop/wake; ``reconcile``:
  run_until_idle), claiming live-lane work first;
- the jobs, one module each: ``add`` (with 216681 adoption, decided by ``adopt``),
  ``update``, ``delete`` (batches of 1000, ``batching``), ``failures`` (what an error
  means for the intents), ``inflight`` + ``inflight_audit`` (the spool of sent adds and
  the settling of those whose answers were lost); ``context`` (the one call wrapper) and
  ``recorder`` (group commit of the answers); what a call must pass first (rate,
  budget, pauses, backoff, leases, the host lock) is ``syncd.gates``; ``events`` (the
  workers' ring of call outcomes).

The one-shot commands that use the engine (``reconcile``, ``retry``, ``check``, ``search``)
and where calls go (the configured or the embedded gallery) are use cases of ``syncd.app``.

No SQL here: every query is a named function of ``syncd.ledger``.
"""
