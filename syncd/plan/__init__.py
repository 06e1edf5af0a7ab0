"""Planning: what the gallery should hold, given what the scan and the watcher recorded.

``planner`` is the pure decision (SPEC §2.1–2.4: ledger facts in, desired items out);
``driver`` is the one place that drains the ledger's ``plan_queue`` through it and writes
the intents, in the live lane or the bulk one; ``dryrun`` is ``reconcile --dry-run``
(scan, plan, summarise, call nothing).
"""
