"""The image-search API: what the engine needs of a provider (``port``: the gallery
operations and their results), Baidu's client and facts (``baidu``), and the HTTP plumbing a
provider's client shares (``transport``: pooled sessions, verified TLS; ``redact``: secrets out
of logs).

Build Baidu's client with ``syncd.api.baidu.client.ImageSearchClient.from_config(config.api,
endpoint_url=...)`` and share it between workers; every failure is an error class of
``syncd.errors``. Importing this package imports nothing: the facts (read by config, pauses
and the local gallery) come without the HTTP client. Import each name from its module.
"""
