"""Baidu's answers: the typed results of ``syncd.api.port``, or the error class of
``syncd.errors`` they stand for."""

from __future__ import annotations

import json
import re
from typing import Any

from syncd.api.baidu.codes import error_for, http_error
from syncd.api.port import AddResult, DeleteResult, SearchHit, SearchPage, UpdateResult
from syncd.api.redact import scrub
from syncd.errors import FatalSetupError, ItemExistsError, TransientError

#: a cont_sign as the API writes it: two uint32, "4261577168,501945506"
_CONT_SIGN = re.compile(r"[0-9]{1,10},[0-9]{1,10}")


class MalformedAnswer(TransientError):
    """An answer that is not the JSON the document describes (treated as transient)."""


def _log_id(body: dict[str, Any]) -> int | None:
    value = body.get("log_id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _existing_cont_sign(body: dict[str, Any]) -> str | None:
    """The ``cont_sign`` a 216681 answer names the existing item by; None if absent or odd."""
    value = body.get("cont_sign")
    if isinstance(value, str) and _CONT_SIGN.fullmatch(value.strip()):
        return value.strip()
    return None


def _excerpt(content: bytes, secrets: tuple[str, ...]) -> str:
    return scrub(content[:120].decode("utf-8", "replace").replace("\n", " "), secrets)


def decode_answer(status: int, content: bytes, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON object of an HTTP answer, or the typed error it stands for.

    An ``error_code`` in the body decides the class; without one, HTTP errors map by status
    (5xx: transient) and an unreadable body is transient. Texts taken from the answer have
    every literal of ``secrets`` replaced by ``***``.
    """
    if 300 <= status < 400:
        # the API never redirects: the endpoint is wrong (e.g. http:// to an https:// site)
        raise FatalSetupError(status, f"HTTP {status}: the endpoint redirects; check api.endpoint")
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("error_code")
        if code not in (None, 0, "0", ""):
            try:
                number = int(code)
            except (TypeError, ValueError):
                raise MalformedAnswer(
                    status, f"error_code {code!r} is not a number", _log_id(body)
                ) from None
            message = body.get("error_msg")
            text = scrub(message, secrets) if isinstance(message, str) else None
            error = error_for(number, text, _log_id(body))
            if isinstance(error, ItemExistsError):
                error.cont_sign = _existing_cont_sign(body)
            raise error
        if status >= 400:
            raise http_error(status, _excerpt(content, secrets))
        return body
    if status >= 400:
        raise http_error(status, _excerpt(content, secrets))
    raise MalformedAnswer(status, f"answer is not a JSON object: {_excerpt(content, secrets)!r}")


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise MalformedAnswer(200, f"answer lacks string field {key!r}", _log_id(body))
    return value


def parse_bool(value: object) -> bool:
    """A JSON bool, or the strings "true"/"false" the API also sends (e.g. ``has_more``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{value!r} is not a boolean")


def parse_add(body: dict[str, Any]) -> AddResult:
    """The result of an add answer."""
    return AddResult(_string(body, "cont_sign"), _log_id(body))


def parse_search(body: dict[str, Any]) -> SearchPage:
    """The page of a search answer; a missing ``has_more`` means no further page."""
    log_id = _log_id(body)
    raw = body.get("result", [])
    if not isinstance(raw, list):
        raise MalformedAnswer(200, "answer field 'result' is not a list", log_id)
    hits: list[SearchHit] = []
    try:
        for entry in raw:
            hits.append(
                SearchHit(
                    str(entry["cont_sign"]), float(entry["score"]), str(entry.get("brief", ""))
                )
            )
        result_num = int(body.get("result_num", len(hits)))
        has_more = parse_bool(body.get("has_more", False))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer(200, f"search answer is malformed: {exc}", log_id) from None
    return SearchPage(hits, result_num, has_more, log_id)


def parse_update(body: dict[str, Any]) -> UpdateResult:
    """The result of an update answer."""
    return UpdateResult(_log_id(body))


def parse_delete(body: dict[str, Any]) -> DeleteResult:
    """The result of a delete answer."""
    return DeleteResult(_log_id(body))
