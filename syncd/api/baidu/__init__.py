"""Baidu's image-search API as the documents state it: the facts the Baidu client, the local
gallery (which emulates it) and the stages that must respect its limits share.

- ``galleries``: the gallery kinds, their endpoint paths and how each tags items.
- ``limits``: the size and count limits of a call.
- ``codes``: Baidu's ``error_code`` table, each code mapped to one of syncd's error classes
  (``syncd.errors``), and the setup advice for the codes an operator must fix.
- ``brief``: the brief syncd writes on each item (the item's library and path).

The client's own modules sit beside this package in ``syncd/api/`` (docs/architecture.md, A
second provider). Nothing here imports the client.
"""
