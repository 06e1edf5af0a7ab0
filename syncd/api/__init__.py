"""The image-search API client: galleries x operations, both auth modes, typed results.

Build one with ``ImageSearchClient.from_config(config.api, endpoint_url=...)`` and share
it between workers; every failure is an error class of ``syncd.errors``.
"""

from syncd.api.client import ImageSearchClient
from syncd.api.params import CallParams
from syncd.api.redact import redact_url
from syncd.api.results import AddResult, DeleteResult, SearchHit, SearchPage, UpdateResult

__all__ = [
    "AddResult",
    "CallParams",
    "DeleteResult",
    "ImageSearchClient",
    "SearchHit",
    "SearchPage",
    "UpdateResult",
    "redact_url",
]
