"""A file's state as the ledger keeps it."""

from __future__ import annotations

from typing import Final, Literal

FileState = Literal["live", "vanished", "held"]
#: live: on disk; vanished: gone, waiting delete_grace; held: gone in a mass vanish, deletes held
FILE_LIVE: Final = "live"
FILE_VANISHED: Final = "vanished"
FILE_HELD: Final = "held"
