"""The brief syncd writes on each item: compact JSON naming the item's library and path
(docs/rules.md, The brief), within Baidu's limit on a brief's bytes
(:data:`syncd.api.baidu.limits.MAX_BRIEF_BYTES`). The planner writes it; status and search
read the path back.
"""

from __future__ import annotations

import json
from typing import Final

#: hex digits of the content hash a shortened brief carries
BRIEF_HASH_DIGITS: Final = 16
_ELLIPSIS: Final = "…"



def make_brief(library: str, relpath: str, content_hash: str, max_bytes: int) -> str:
    """The item's brief: compact JSON ``{"lib":…,"path":…}``, at most ``max_bytes`` in UTF-8
    (the API's limit, ``syncd.api.baidu.limits.MAX_BRIEF_BYTES``).

    A path too long for that keeps its tail behind "…", and a path that is not valid
    UTF-8 is shown with U+FFFD; both add ``"h"``, the first 16 hex digits of the content
    hash, so the ledger can still map the brief back.
    """
    path = relpath.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    brief = _compact({"lib": library, "path": path})
    if path == relpath and len(brief.encode("utf-8")) <= max_bytes:
        return brief
    digest = content_hash[:BRIEF_HASH_DIGITS]
    whole = _compact({"lib": library, "path": path, "h": digest})
    if len(whole.encode("utf-8")) <= max_bytes:
        return whole
    budget = max_bytes - len(
        _compact({"lib": library, "path": _ELLIPSIS, "h": digest}).encode("utf-8")
    )
    start = len(path)
    while start > 0:
        cost = len(_compact(path[start - 1])[1:-1].encode("utf-8"))
        if cost > budget:
            break
        budget -= cost
        start -= 1
    return _compact({"lib": library, "path": _ELLIPSIS + path[start:], "h": digest})


def brief_path(brief: str) -> str | None:
    """The path a brief names (possibly shortened), or None for a brief syncd did not write."""
    try:
        data = json.loads(brief)
    except ValueError:
        return None
    path = data.get("path") if isinstance(data, dict) else None
    return path if isinstance(path, str) else None


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
