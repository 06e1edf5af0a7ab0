"""Baidu's ``error_code`` table: each code of the API document mapped to the error class
syncd handles it as (``syncd.errors``; docs/rules.md, Error classes), the API's own
``error_msg``, and for the codes an operator must fix, what to fix.

The client raises through :func:`error_for`; the local gallery, which emulates Baidu,
answers with these codes. No stage compares a raw code: the stages act on the classes, and
on the named facts here (:data:`ITEM_EXISTS_CODE`, :func:`is_daily_quota`,
:func:`setup_advice`).

Two of Baidu's ways shape how the engine adds and deletes: an add of an image the gallery
already holds is refused with 216681 (:data:`ITEM_EXISTS_CODE`), whose answer names the item
holding it (docs/rules.md, Duplicate adds); and a delete takes effect late (the document: up
to about 4 hours, until the gallery's daily purge), so an image deleted lately is still found
and its add is still refused with 216681 (docs/rules.md, Deletion latency). A delete of an
item the gallery does not hold answers 216680 (:data:`ITEM_MISSING_CODE`), which a delete
counts as done.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.errors import (
    ApiError,
    BadImageError,
    BadRequestError,
    DailyQuotaError,
    FatalSetupError,
    GalleryNotCreatedError,
    ItemExistsError,
    ItemMissingError,
    RateError,
    TokenError,
    TotalQuotaError,
    TransientError,
)

#: 216681: the gallery already holds this image (ItemExistsError; the local gallery answers it)
ITEM_EXISTS_CODE = 216681
#: 216680: the item is not in the gallery (ItemMissingError)
ITEM_MISSING_CODE = 216680


@dataclass(frozen=True)
class ErrorEntry:
    """One row of the API's error table: the class syncd handles the code as, the API's own
    ``error_msg``, and for setup errors what the operator should fix (one line)."""

    cls: type[ApiError]
    message: str
    advice: str = ""


#: The API document's error table: code -> its entry.
ERROR_TABLE: dict[int, ErrorEntry] = {
    1: ErrorEntry(TransientError, "Unknown error"),
    2: ErrorEntry(TransientError, "Service temporarily unavailable"),
    3: ErrorEntry(
        FatalSetupError,
        "Unsupported openapi method",
        "the endpoint does not offer this API: check api.endpoint",
    ),
    4: ErrorEntry(RateError, "Open api request limit reached"),
    6: ErrorEntry(
        FatalSetupError,
        "No permission to access data",
        "the application may not use the image-search API: enable it for this app in the Baidu console",
    ),
    13: ErrorEntry(
        FatalSetupError,
        "Get service token failed",
        "no access token could be issued: check api.api_key and api.secret_key",
    ),
    14: ErrorEntry(
        FatalSetupError,
        "IAM Certification failed",
        "authentication failed: check api.api_key, api.secret_key and api.auth",
    ),
    15: ErrorEntry(
        FatalSetupError,
        "app not exsits or create failed",
        "the application does not exist: check api.api_key against the Baidu console",
    ),
    17: ErrorEntry(DailyQuotaError, "Open api daily request limit reached"),
    18: ErrorEntry(RateError, "Open api qps request limit reached"),
    19: ErrorEntry(TotalQuotaError, "Open api total request limit reached"),
    100: ErrorEntry(
        FatalSetupError,
        "Invalid parameter",
        "the access token was refused: check api.api_key, api.secret_key and api.auth",
    ),
    110: ErrorEntry(TokenError, "Access token invalid or no longer valid"),
    111: ErrorEntry(TokenError, "Access token expired"),
    282000: ErrorEntry(TransientError, "internal error"),
    216017: ErrorEntry(
        GalleryNotCreatedError,
        "not initialized",
        "create the gallery in the Baidu console (应用详情页 申请建库)",
    ),
    216100: ErrorEntry(BadRequestError, "invalid param"),
    216101: ErrorEntry(BadRequestError, "not enough param"),
    216102: ErrorEntry(
        FatalSetupError,
        "service not support",
        "the endpoint does not serve this gallery: check api.endpoint and the library's gallery",
    ),
    216103: ErrorEntry(BadRequestError, "param too long"),
    216110: ErrorEntry(
        FatalSetupError,
        "appid not exist",
        "the application id does not exist: check api.api_key against the Baidu console",
    ),
    216200: ErrorEntry(BadImageError, "empty image"),
    216201: ErrorEntry(BadImageError, "image format error"),
    216202: ErrorEntry(BadImageError, "image size error"),
    216203: ErrorEntry(BadImageError, "image size error"),
    216630: ErrorEntry(TransientError, "recognize error"),
    216631: ErrorEntry(BadImageError, "recognize bank card error"),
    216633: ErrorEntry(BadImageError, "recognize idcard error"),
    216680: ErrorEntry(ItemMissingError, "item not exist"),
    216681: ErrorEntry(ItemExistsError, "item exist"),
    216634: ErrorEntry(TransientError, "detect error"),
    282003: ErrorEntry(BadRequestError, "missing parameters"),
    282005: ErrorEntry(TransientError, "batch processing error"),
    282006: ErrorEntry(BadRequestError, "batch task limit reached"),
    282112: ErrorEntry(TransientError, "url download timeout"),
    282113: ErrorEntry(BadImageError, "url response invalid"),
    282114: ErrorEntry(BadRequestError, "url size error"),
    282808: ErrorEntry(BadRequestError, "request id not exist"),
    282809: ErrorEntry(BadRequestError, "result type error"),
    282810: ErrorEntry(BadImageError, "image recognize error"),
    283300: ErrorEntry(BadImageError, "image recognize error"),
}


def error_message(code: int) -> str:
    """The API's own ``error_msg`` for ``code`` ("unknown error" for codes outside the table)."""
    entry = ERROR_TABLE.get(code)
    return entry.message if entry else "unknown error"


def error_for(code: int, message: str | None = None, log_id: int | None = None) -> ApiError:
    """The typed exception for an API ``error_code``.

    Codes outside the document's table are treated as bad requests: marked failed with
    their text and never retried in a loop.
    """
    entry = ERROR_TABLE.get(code)
    cls = entry.cls if entry else BadRequestError
    return cls(code, message if message is not None else error_message(code), log_id)


def is_daily_quota(code: int) -> bool:
    """Whether a stored pause's ``code`` is the daily quota's (it resets at 00:00 UTC+8)."""
    entry = ERROR_TABLE.get(code)
    return entry is not None and entry.cls is DailyQuotaError


def setup_advice(gallery: str, error: ApiError) -> str:
    """One line saying what is wrong with ``gallery`` and what the operator must fix
    (a fatal setup error, or a fresh access token refused)."""
    if isinstance(error, TokenError):
        return (
            f"gallery {gallery}: a fresh access token was refused (error {error.code}): "
            "check api.api_key, api.secret_key and api.auth"
        )
    entry = ERROR_TABLE.get(error.code)
    advice = entry.advice if entry and entry.advice else "see the API's error table"
    if isinstance(error, GalleryNotCreatedError):
        return f"gallery {gallery} is not initialized (error {error.code}): {advice}"
    return f"gallery {gallery}: {error.message} (error {error.code}): {advice}"


def http_error(status: int, body_excerpt: str = "") -> ApiError:
    """An error for an HTTP answer that carries no API error body."""
    cls: type[ApiError] = TransientError if status >= 500 or status == 429 else BadRequestError
    text = f"HTTP {status}"
    if body_excerpt:
        text += f": {body_excerpt[:120]}"
    return cls(status, text)
