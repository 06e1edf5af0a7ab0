"""Keeping secrets (secret key, access token, signatures) out of logs, errors and reprs."""

from __future__ import annotations

import logging
import re
import threading

#: query parameters whose values are secrets (token mode URLs, the token request)
_SECRET_PARAMS = ("access_token", "client_secret")
_SECRET_PARAM_RE = re.compile(
    r"(?P<name>" + "|".join(_SECRET_PARAMS) + r")=(?P<value>[^&\s'\"#]*)", re.IGNORECASE
)


def redact_url(url: str) -> str:
    """``url`` with the values of ``access_token`` and ``client_secret`` replaced by ``***``."""
    return _SECRET_PARAM_RE.sub(lambda m: f"{m.group('name')}=***", url)


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with secret URL parameters and every literal in ``secrets`` replaced by ``***``."""
    text = redact_url(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class RedactingFilter(logging.Filter):
    """Blanks secret URL parameters in records of libraries that log request lines.

    urllib3 logs every request line at DEBUG, access token and client secret included.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_url(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact_url(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


#: loggers that write request URLs (with their query strings) on their own
_URL_LOGGERS = ("urllib3.connectionpool",)
_install_lock = threading.Lock()


def install_log_redaction() -> None:
    """Attach RedactingFilter to the loggers that write request URLs (once per process)."""
    with _install_lock:
        for name in _URL_LOGGERS:
            target = logging.getLogger(name)
            if not any(isinstance(f, RedactingFilter) for f in target.filters):
                target.addFilter(RedactingFilter())
