"""Adds whose answer syncd has not recorded: their images, kept beside the ledger.

An add whose answer is lost (``kill -9`` before the answer was committed, a timeout, a
dropped connection) may still have created an item. While the file is there, the next add
answers 216681 and syncd adopts the item (docs/rules.md, Duplicate adds). When the file is
gone too, only the image can find that item again, so each add keeps the bytes it sends
here, written before the call goes out and removed once the answer is recorded (or says
nothing was added). What stays after a crash is audited at the next start
(``IntentRunner.audit_spool``).

One file per (gallery, content): a JSON line saying what was sent, then the image bytes.
At most ``api.concurrency`` adds are in flight, plus those whose answer was lost.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from syncd.config import HostConfig

log = logging.getLogger("syncd.sync")

#: the suffix of spooled adds; a file still being written has ``.tmp`` after it
SUFFIX = ".add"


@dataclass(frozen=True)
class SpooledAdd:
    """An add that went out (or was about to) and whose answer was not recorded."""

    gallery: str
    content_hash: str
    brief: str
    tags: tuple[int, ...]
    #: seconds since the epoch when it was spooled
    sent_at: float
    data: bytes


class AddSpool:
    """The folder of spooled adds (``<ledger>.inflight``, readable by its owner only)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        #: the last keep failed (said once in the log until one works again)
        self._failing = False

    @classmethod
    def beside(cls, ledger_path: Path) -> AddSpool:
        """The spool of the ledger at ``ledger_path``."""
        return cls(ledger_path.with_name(ledger_path.name + ".inflight"))

    @classmethod
    def for_host(cls, ledger_path: Path, host: HostConfig) -> AddSpool:
        """The spool of ``host`` (hosts sharing a ledger keep their own)."""
        return cls(host.local_path(ledger_path, ".inflight"))

    def _path(self, gallery: str, content_hash: str) -> Path:
        return self.directory / f"{gallery}-{content_hash}{SUFFIX}"

    def keep(
        self,
        gallery: str,
        content_hash: str,
        brief: str,
        tags: tuple[int, ...],
        sent_at: float,
        data: bytes,
    ) -> bool:
        """Spool an add before it is sent. False when the folder cannot take it: the add
        still goes out (a warning says so, once until spooling works again)."""
        head = json.dumps(
            {"gallery": gallery, "content_hash": content_hash, "brief": brief,
             "tags": list(tags), "sent_at": sent_at},
            ensure_ascii=True,
        )  # fmt: skip
        try:
            self._write_whole(self._path(gallery, content_hash), head, data)
        except OSError as exc:
            if not self._failing:
                log.warning("cannot keep the images of adds in %s (%s): an add whose answer "
                            "is lost meanwhile may leave an item behind",
                            self.directory, exc.strerror or exc)  # fmt: skip
            self._failing = True
            return False
        if self._failing:
            log.info("the images of adds are kept in %s again", self.directory)
            self._failing = False
        return True

    def _write_whole(self, final: Path, head: str, data: bytes) -> None:
        """Write ``final`` beside it, then rename it into place: never seen half written."""
        partial = final.with_name(final.name + ".tmp")
        try:
            _write(partial, head, data)
        except FileNotFoundError:  # the first add, or the folder was removed meanwhile
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write(partial, head, data)
        os.replace(partial, final)

    def drop(self, gallery: str, content_hash: str) -> None:
        """The add's answer is recorded (or nothing was added): forget its image."""
        try:
            self._path(gallery, content_hash).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove a spooled add from %s: %s", self.directory, exc.strerror)

    def count(self) -> int:
        """Spooled adds (names only, nothing read); a folder that cannot be listed counts
        as one, so a caller looks and says why it cannot."""
        try:
            with os.scandir(self.directory) as found:
                return sum(1 for entry in found if entry.name.endswith(SUFFIX))
        except FileNotFoundError:
            return 0
        except OSError:
            return 1

    def entries(self) -> list[SpooledAdd]:
        """The spooled adds, oldest first; unreadable or half-written files are removed."""
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("cannot list spooled adds in %s: %s", self.directory, exc.strerror)
            return []
        found: list[SpooledAdd] = []
        for name in names:
            path = self.directory / name
            if not name.endswith(SUFFIX):
                # a spool write cut short: that add was never sent
                path.unlink(missing_ok=True)
                continue
            try:
                found.append(_parse(path.read_bytes()))
            except OSError as exc:
                log.warning("cannot read spooled add %s: %s", name, exc.strerror)
            except (ValueError, KeyError, TypeError):
                log.warning("removing unreadable spooled add %s", name)
                path.unlink(missing_ok=True)
        found.sort(key=lambda entry: entry.sent_at)
        return found


def _write(path: Path, head: str, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(head.encode("ascii") + b"\n")
        out.write(data)


def _parse(raw: bytes) -> SpooledAdd:
    """A spool file's content; raises ValueError, KeyError or TypeError when malformed."""
    head, sep, data = raw.partition(b"\n")
    if not sep or not data:
        raise ValueError("no image")
    fields = json.loads(head)
    return SpooledAdd(
        gallery=str(fields["gallery"]),
        content_hash=str(fields["content_hash"]),
        brief=str(fields["brief"]),
        tags=tuple(int(tag) for tag in fields["tags"]),
        sent_at=float(fields["sent_at"]),
        data=data,
    )
