"""Log line formats for `syncd run`: plain text (stamped with the time unless journald
stamps it), or one JSON object per line."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]

#: LogRecord attributes that are not caller-supplied `extra=` fields
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, msg, any `extra=`
    fields (library, path, …) and exc when there is a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = (
                    value if isinstance(value, str | int | float | bool | None) else str(value)
                )
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


#: the text line when journald stamps the time itself
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
#: the text line anywhere else (a terminal, a file): local time first
STAMPED_TEXT_FORMAT = "%(asctime)s " + TEXT_FORMAT


def stderr_is_journal(environ: Mapping[str, str] | None = None) -> bool:
    """True when stderr is connected to the journal: systemd sets ``JOURNAL_STREAM`` to
    ``<device>:<inode>`` of that stream, so a stderr redirected elsewhere (a file, a pipe)
    is told apart by comparing them."""
    stream = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = stream.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return True  # no file to compare: take the word of the service manager
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def configure_logging(fmt: LogFormat, verbose: bool = False) -> None:
    """Send every log line to stderr in `fmt`; text lines start with the time unless
    stderr goes to the journal, which stamps each line itself."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        stamped = not stderr_is_journal()
        handler.setFormatter(logging.Formatter(STAMPED_TEXT_FORMAT if stamped else TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # watchdog's per-event debug chatter is not ours to print
    logging.getLogger("watchdog").setLevel(logging.INFO if verbose else logging.WARNING)
