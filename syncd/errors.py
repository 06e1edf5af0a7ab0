"""The one error taxonomy (SPEC §3): every API answer that is not a result is one of these.

Both the client (which raises them) and the local gallery server (which answers with
their codes) use this module; no other stage compares raw error codes.
"""

from __future__ import annotations

from typing import ClassVar


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""


class ConfigError(SyncdError):
    """The configuration is wrong; the text names the key and what was expected."""


class ValidationError(SyncdError):
    """A request was refused before any call was made (brief too long, tag out of range, …)."""


class ApiError(SyncdError):
    """An answer of the image-search API that is an error.

    ``code`` is the API's ``error_code`` (or the HTTP status for bodies without one, or 0
    when no answer arrived), ``message`` its ``error_msg`` and ``log_id`` its ``log_id``.
    The text never holds a secret: callers pass only the API's own message.
    """

    kind: ClassVar[str] = "api"
    #: whether repeating the same call later can succeed without a change on our side
    retryable: ClassVar[bool] = False

    def __init__(self, code: int, message: str, log_id: int | None = None) -> None:
        self.code = code
        self.message = message
        self.log_id = log_id
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"error {self.code}: {self.message}"
        if self.log_id is not None:
            text += f" (log_id {self.log_id})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, log_id={self.log_id!r})"


class TransientError(ApiError):
    """Server trouble, timeouts, dropped connections: retry with backoff."""

    kind = "transient"
    retryable = True


class RateError(ApiError):
    """Too many calls per second (4, 18): slow the shared rate and retry."""

    kind = "rate"
    retryable = True


class QuotaError(ApiError):
    """Daily (17) or total (19) quota reached: pause every call of the account."""

    kind = "quota"
    retryable = True


class TokenError(ApiError):
    """The access token is unknown (110) or expired (111): renew once and retry."""

    kind = "token"
    retryable = True


class FatalSetupError(ApiError):
    """The account or gallery is not set up (wrong key, no gallery, no permission)."""

    kind = "fatal_setup"


class BadImageError(ApiError):
    """The gallery refused the image itself: retry only when the file changes."""

    kind = "bad_image"


class BadRequestError(ApiError):
    """A parameter the gallery refused: a syncd bug or a rule set wrong; never loop."""

    kind = "bad_request"


class ItemExistsError(ApiError):
    """216681: the gallery already holds this image (SPEC §2.6).

    ``cont_sign`` names the item the gallery holds when its answer says (the real API's
    does: ``{"error_code": 216681, "cont_sign": "…", …}``), else None.
    """

    kind = "item_exists"

    def __init__(
        self, code: int, message: str, log_id: int | None = None, cont_sign: str | None = None
    ) -> None:
        self.cont_sign = cont_sign
        super().__init__(code, message, log_id)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"log_id={self.log_id!r}, cont_sign={self.cont_sign!r})"
        )


#: the code of ItemExistsError, for the ledger, which stores codes rather than classes
ITEM_EXISTS_CODE = 216681


class ItemMissingError(ApiError):
    """216680: the item is not in the gallery."""

    kind = "item_missing"


#: The API document's error table: code -> (class, error_msg as the API spells it).
ERROR_TABLE: dict[int, tuple[type[ApiError], str]] = {
    1: (TransientError, "Unknown error"),
    2: (TransientError, "Service temporarily unavailable"),
    3: (FatalSetupError, "Unsupported openapi method"),
    4: (RateError, "Open api request limit reached"),
    6: (FatalSetupError, "No permission to access data"),
    13: (FatalSetupError, "Get service token failed"),
    14: (FatalSetupError, "IAM Certification failed"),
    15: (FatalSetupError, "app not exsits or create failed"),
    17: (QuotaError, "Open api daily request limit reached"),
    18: (RateError, "Open api qps request limit reached"),
    19: (QuotaError, "Open api total request limit reached"),
    100: (FatalSetupError, "Invalid parameter"),
    110: (TokenError, "Access token invalid or no longer valid"),
    111: (TokenError, "Access token expired"),
    282000: (TransientError, "internal error"),
    216017: (FatalSetupError, "not initialized"),
    216100: (BadRequestError, "invalid param"),
    216101: (BadRequestError, "not enough param"),
    216102: (FatalSetupError, "service not support"),
    216103: (BadRequestError, "param too long"),
    216110: (FatalSetupError, "appid not exist"),
    216200: (BadImageError, "empty image"),
    216201: (BadImageError, "image format error"),
    216202: (BadImageError, "image size error"),
    216203: (BadImageError, "image size error"),
    216630: (TransientError, "recognize error"),
    216631: (BadImageError, "recognize bank card error"),
    216633: (BadImageError, "recognize idcard error"),
    216680: (ItemMissingError, "item not exist"),
    216681: (ItemExistsError, "item exist"),
    216634: (TransientError, "detect error"),
    282003: (BadRequestError, "missing parameters"),
    282005: (TransientError, "batch processing error"),
    282006: (BadRequestError, "batch task limit reached"),
    282112: (TransientError, "url download timeout"),
    282113: (BadImageError, "url response invalid"),
    282114: (BadRequestError, "url size error"),
    282808: (BadRequestError, "request id not exist"),
    282809: (BadRequestError, "result type error"),
    282810: (BadImageError, "image recognize error"),
    283300: (BadImageError, "image recognize error"),
}


def error_message(code: int) -> str:
    """The API's own ``error_msg`` for ``code`` ("unknown error" for codes outside the table)."""
    entry = ERROR_TABLE.get(code)
    return entry[1] if entry else "unknown error"


def error_for(code: int, message: str | None = None, log_id: int | None = None) -> ApiError:
    """The typed exception for an API ``error_code``.

    Codes outside the document's table are treated as bad requests: marked failed with
    their text and never retried in a loop.
    """
    cls = ERROR_TABLE.get(code, (BadRequestError, ""))[0]
    return cls(code, message if message is not None else error_message(code), log_id)


def http_error(status: int, body_excerpt: str = "") -> ApiError:
    """An error for an HTTP answer that carries no API error body."""
    cls: type[ApiError] = TransientError if status >= 500 or status == 429 else BadRequestError
    text = f"HTTP {status}"
    if body_excerpt:
        text += f": {body_excerpt[:120]}"
    return cls(status, text)
