"""Baidu's image-search API: its client, and its facts as the API document states them.

The client: ``client`` (``ImageSearchClient``, which implements ``syncd.api.port.ImageSearch``:
galleries x operations, both auth modes), ``auth`` (access tokens and BCE request signing),
``params`` (each call's parameters, checked against the limits before sending) and
``results`` (answers parsed into the port's results, or raised as their error class).

The facts, which the local gallery (which emulates Baidu), config, pauses and the stages that
must respect Baidu's limits read without loading the client:

- ``galleries``: the gallery kinds, their endpoint paths and how each tags items.
- ``limits``: the size and count limits of a call.
- ``codes``: Baidu's ``error_code`` table, each code mapped to one of syncd's error classes
  (``syncd.errors``), and the setup advice for the codes an operator must fix.
- ``brief``: the brief syncd writes on each item (the item's library and path).

A second provider is a package beside this one (docs/architecture.md, A second provider).
This package's ``__init__`` imports nothing.
"""
