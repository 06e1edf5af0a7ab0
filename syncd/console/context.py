"""What the console's views share: the config, the pages, the ledger's reader (read through
the application layer, ``syncd.app``), the thumbnails and the static files."""

from __future__ import annotations

from typing import Any

from syncd.app.browse import FileLocation, file_at, open_reader
from syncd.config import Config, LibraryConfig
from syncd.console.thumbs import ThumbnailCache
from syncd.console.web import STATIC_DIR, Pages, Refused, parse_id


class Console:
    """The console of ``config`` (its [console] section and the ledger it names)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.open_mode = not config.console.password
        self.pages = Pages(self.open_mode, [lib.name for lib in config.libraries])
        #: read-only sessions on the ledger, kept between requests
        self.reader = open_reader(config)
        self.thumbs = ThumbnailCache()
        #: the files shipped in the package, by name: nothing else is served as static
        self.static = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
        #: whether the sync runs in this process (``syncd run``), so its calls are recorded
        #: here; ``syncd console`` alone sets it False
        self.beside_sync = True

    def read_status_document(self) -> dict[str, Any]:
        """The ``syncd status --json`` document, read now: every request reads the ledger
        anew (its counts are kept by the writes, so a read is quick at any size)."""
        from syncd.app.status import read_status_document

        return read_status_document(self.config, self.reader)

    def library(self, name: str) -> LibraryConfig | None:
        """The library ``name`` of this host's config; None when it names none such."""
        return next((lib for lib in self.config.libraries if lib.name == name), None)

    def located(self, raw_id: str) -> tuple[FileLocation, LibraryConfig]:
        """The live file of the id a request gave, and its library in this host's config;
        400 for an id that is not one, 404 for a file the ledger or this host lacks."""
        location = file_at(self.reader, parse_id(raw_id))
        lib = self.library(location.library) if location is not None else None
        if location is None or lib is None:
            raise Refused(404, "no such file on this host")
        return location, lib

    def close(self) -> None:
        """Release the ledger connections."""
        self.reader.close()
