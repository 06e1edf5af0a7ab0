"""The application layer: one module per use case, the one place each is put together.

The doors (``syncd.cli``, ``syncd.daemon``, ``syncd.console``) parse a request, call a
function here and render its answer; they import none of the stages (``syncd.watch``,
``syncd.scan``, ``syncd.ledger``, ``syncd.plan``, ``syncd.gates``, ``syncd.sync``). This
package imports nothing at import time: each door imports the module of the use case it
runs, when it runs it, so a command that needs no database does not load SQLAlchemy
(docs/architecture.md, The application layer).

- ``status``: the status report and the ``status --json`` document (``/api/status``)
- ``reconcile``, ``dryrun``: ``syncd reconcile`` and ``--dry-run``; ``walks``: the walk ahead
- ``retry``, ``search``, ``check``: the one-shot commands of the same names
- ``held``: held deletes (mass vanish), listed and let go
- ``browse``: what the console reads from the ledger (failures, files, calls per minute);
  ``console_activity``: the workers' recent calls, for the console in the same process
- ``service`` (with ``service_sections``): ``syncd run``'s watch -> scan -> plan -> sync
- ``ledger``: ``syncd ledger migrate`` and ``release-host``
- ``gallery``: where calls go (``api.endpoint``, or the embedded local gallery) and
  ``syncd gallery serve``
- ``errors``: the errors these raise that a door tells apart
"""
