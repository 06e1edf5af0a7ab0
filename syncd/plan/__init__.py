"""Planning: what the gallery should hold, given what the scan and the watcher recorded.

``planner`` is the pure decision (ledger facts in, desired items out; the rules of
docs/rules.md, Keeping the gallery in step); ``driver`` is the one place that drains the
ledger's ``plan_queue`` through it and writes the intents, in the live lane or the bulk one;
``dryrun`` is ``reconcile --dry-run`` (scan, plan, summarise, call nothing).
"""
