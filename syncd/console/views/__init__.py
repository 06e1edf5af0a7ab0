"""The console's pages and JSON API, a module per page: overview and status, activity,
failures and retry, held deletes, search, and the files it serves (thumbnails, static).

Every handler takes the shared :class:`~syncd.console.context.Console`, the request and
how it got in, and returns the response; ``HANDLERS`` of each module names its endpoints
(:mod:`syncd.console.routes` maps URLs to them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from werkzeug.wrappers import Request, Response

    from syncd.console.context import Console
    from syncd.console.web import Access

Handler: TypeAlias = "Callable[[Console, Request, Access], Response]"
