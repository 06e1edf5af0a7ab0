"""``syncd check``: validate the config, look at each library's root, reach the endpoint,
obtain a token, probe each gallery, open the ledger."""

from __future__ import annotations

import os
from dataclasses import dataclass

from syncd.api.baidu.codes import setup_advice
from syncd.config import Config
from syncd.errors import (
    ApiError,
    ConfigError,
    FatalSetupError,
    SyncdError,
    TokenError,
    TransientError,
)
from syncd.health import inspect_root, root_reasons
from syncd.ledger.schema import LedgerError, open_ledger


@dataclass(frozen=True)
class CheckLine:
    """One check and how it went; ``ok`` False says what is wrong."""

    what: str
    ok: bool
    detail: str


def check_setup(config: Config) -> tuple[list[CheckLine], int]:
    """Look at each library's root, reach the endpoint, obtain a token, probe each gallery
    the libraries feed, open the ledger. Returns the lines and the exit code (0 ok, 2 config,
    a root or the ledger, 3 API)."""
    from syncd.app.gallery import EMBEDDED, open_client

    lines = root_lines(config)
    code = 0 if all(line.ok for line in lines) else 2
    endpoint = config.api.endpoint
    shown = "the embedded local gallery" if endpoint == EMBEDDED else endpoint
    try:
        with open_client(config) as client:
            lines.append(CheckLine("endpoint", True, shown))
            for gallery in sorted({lib.gallery for lib in config.libraries}):
                try:
                    client.check(gallery)
                except ApiError as exc:
                    lines.append(CheckLine(f"gallery {gallery}", False, _problem(gallery, exc)))
                    code = 3
                else:
                    lines.append(CheckLine(f"gallery {gallery}", True, "credentials accepted"))
    except ConfigError as exc:
        lines.append(CheckLine("api", False, str(exc)))
        code = 2
    except SyncdError as exc:
        lines.append(CheckLine(f"endpoint {shown}", False, str(exc)))
        code = 3
    path = config.ledger.path
    if config.ledger.exists():
        try:
            ledger = open_ledger(config.ledger, create=False)
            lines.append(CheckLine("ledger", True, ledger.where))
            ledger.close()
        except LedgerError as exc:
            lines.append(CheckLine("ledger", False, str(exc)))
            code = code or 2
    else:
        folder = next((p for p in path.parents if p.exists()), None)
        if folder is not None and os.access(folder, os.W_OK):
            lines.append(CheckLine("ledger", True, f"{path} (created on the first run)"))
        else:
            lines.append(CheckLine("ledger", False, f"{path}: its folder cannot be created"))
            code = code or 2
    return lines, code


def root_lines(config: Config) -> list[CheckLine]:
    """One line per library: its root, or why it is no root to sync (missing, not a folder,
    unreadable, empty): a typo in ``root`` would otherwise sync nothing and say nothing."""
    lines = []
    for lib in config.libraries:
        facts = inspect_root(lib.root)
        reasons = root_reasons(facts, None)
        if reasons:
            lines.append(CheckLine(f"library {lib.name}", False, reasons[0].detail))
        else:
            lines.append(CheckLine(f"library {lib.name}", True, f"root {facts.root}"))
    return lines


def _problem(gallery: str, error: ApiError) -> str:
    """What a failed probe of ``gallery`` means, in one line."""
    if isinstance(error, FatalSetupError | TokenError):
        return setup_advice(gallery, error)
    if isinstance(error, TransientError):
        return f"cannot reach the gallery API: {error}"
    return str(error)
