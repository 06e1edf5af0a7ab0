"""The one error taxonomy: every API answer that is not a result is one of these classes,
and each class says what syncd does about it (docs/rules.md, Error classes).

These are the product's classes, what the engine acts on. Which provider code is which class
is the provider's table (Baidu's: ``syncd.api.baidu.codes``); the codes named in the
docstrings below are Baidu's. No stage compares raw error codes.
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


class RateError(ApiError):
    """Too many calls per second (4, 18): slow the shared rate and retry."""

    kind = "rate"


class QuotaError(ApiError):
    """A quota of the account is spent: pause every call of the account."""

    kind = "quota"


class DailyQuotaError(QuotaError):
    """The daily quota is spent (17): calls wait until it resets at 00:00 UTC+8."""


class BudgetSpentError(DailyQuotaError):
    """syncd's own daily budget (``api.daily_budget``) is spent: no call goes out until it
    resets at 00:00 UTC+8, as after error 17. Raised before a call, never answered by the
    API (code 0)."""

    kind = "budget"


class TotalQuotaError(QuotaError):
    """The total quota is spent (19): calls wait, probed again every hour."""


class TokenError(ApiError):
    """The access token is unknown (110) or expired (111): renew once and retry."""

    kind = "token"


class FatalSetupError(ApiError):
    """The account or gallery is not set up (wrong key, no gallery, no permission)."""

    kind = "fatal_setup"


class GalleryNotCreatedError(FatalSetupError):
    """The gallery was never created for this application (216017)."""


class BadImageError(ApiError):
    """The gallery refused the image itself: retry only when the file changes."""

    kind = "bad_image"


class BadRequestError(ApiError):
    """A parameter the gallery refused: a syncd bug or a rule set wrong; never loop."""

    kind = "bad_request"


class ItemExistsError(ApiError):
    """216681: the gallery already holds this image (docs/rules.md, Duplicate adds).

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


class ItemMissingError(ApiError):
    """216680: the item is not in the gallery."""

    kind = "item_missing"
