"""The ledger: the one room that speaks SQL (SQLite, or PostgreSQL for several hosts).

- ``schema`` (open, create, upgrade under a lock), ``models`` (the tables), ``dialect``
  (everything engine-specific), ``migrate`` (``syncd ledger migrate``);
- what the stages record and ask: ``files`` (the scan's rows), ``facts`` + ``intents``
  (the planner's facts and answer), ``queue`` (claims, leases, recorded answers),
  ``items`` and ``tombstones`` (lookups by cont_sign), ``backlog`` (counts of work),
  ``retry``, ``settings`` (the settings store: pauses and stops), ``conditions`` (what each
  library's last scan could not see, and why), ``budget``, ``calls`` (calls per host and
  minute), ``hosts`` (several hosts, one account) and ``call_slots`` (the account's call rate,
  booked by every host);
- what people read: ``report`` (``status``, the dry-run's plan), ``browse`` (the console).
"""
