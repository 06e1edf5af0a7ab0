"""The image-search API: Baidu's client (galleries x operations, both auth modes, typed
results) and Baidu's facts (``syncd.api.baidu``).

Build a client with ``syncd.api.client.ImageSearchClient.from_config(config.api,
endpoint_url=...)`` and share it between workers; every failure is an error class of
``syncd.errors``. Importing this package imports nothing: the facts (read by config, pauses
and the local gallery) come without the HTTP client. Import each name from its module.
"""
