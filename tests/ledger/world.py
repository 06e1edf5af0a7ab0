"""A small world for scan and ledger tests: library folders in tmp_path, a real config file,
a real SQLite or PostgreSQL ledger, and a stand-in for the sync engine that plays the claimed intents
through the ledger's queue API and tells which calls a real engine would have made.

Import with ``from ledger.world import World`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ledgers import LedgerChoice
from sqlalchemy import select

from devkit.imagegen import make_image
from syncd.api.baidu.brief import brief_path
from syncd.config import Config, load_config
from syncd.ledger.models import File, Item, Library
from syncd.ledger.queue import (
    AddedItem,
    claim_due_intents,
    record_adds,
    record_deleted,
    record_updated,
)
from syncd.ledger.schema import Ledger, open_ledger
from syncd.paths.handoff import LookAgain
from syncd.plan.driver import PlanRules, plan_pending
from syncd.scan.scanner import (
    LibraryScan,
    ScanResult,
    scan_libraries,
    scan_paths,
)


@dataclass(frozen=True)
class Call:
    """One API call the engine would make: op and the path its brief names."""

    op: str
    path: str
    gallery: str = ""


def toml_config(
    tmp_path: Path,
    libraries: list[dict[str, object]],
    *,
    delete_grace: float = 30.0,
    max_delete_fraction: float = 1.0,
    settle: float = 0.0,
    extra: str = "",
    ledger: LedgerChoice | None = None,
) -> Path:
    """Write a config file for ``libraries`` (name, gallery, optional rules) under tmp_path;
    the ledger is ``ledger`` (SQLite at ./data/ledger.db by default)."""
    lines = [
        "[ledger]",
        *(ledger or LedgerChoice("sqlite")).toml_lines("./data"),
        "[watch]",
        f"settle = {settle}",
        f"delete_grace = {delete_grace}",
        "[safety]",
        f"max_delete_fraction = {max_delete_fraction}",
        extra,
    ]
    for lib in libraries:
        lines += [
            "[[library]]",
            f'name = "{lib["name"]}"',
            f'root = "./{lib["name"]}"',
            f'gallery = "{lib.get("gallery", "similar")}"',
        ]
        for key in ("include", "exclude"):
            if key in lib:
                lines.append(f"{key} = {list(lib[key])}")  # type: ignore[call-overload]
        if lib.get("follow_symlinks"):
            lines.append("follow_symlinks = true")
        for glob, tags in lib.get("rules", []):  # type: ignore[attr-defined]
            lines += ["[[library.rule]]", f'glob = "{glob}"', f"tags = {list(tags)}"]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class World:
    """Libraries under ``tmp_path/<name>``, their config and ledger, and a fake engine."""

    def __init__(
        self,
        tmp_path: Path,
        libraries: list[dict[str, object]] | None = None,
        ledger: LedgerChoice | None = None,
        **config: float | str,
    ) -> None:
        libraries = libraries or [{"name": "photos", "gallery": "similar"}]
        self.tmp_path = tmp_path
        for lib in libraries:
            (tmp_path / str(lib["name"])).mkdir(exist_ok=True)
        self.config_path = toml_config(tmp_path, libraries, ledger=ledger, **config)  # type: ignore[arg-type]
        self.config: Config = load_config(self.config_path)
        self.ledger: Ledger = open_ledger(self.config.ledger)
        self.clock = time.time()
        self._next_sign = 0

    def close(self) -> None:
        self.ledger.close()

    # -- the disk ---------------------------------------------------------------------------

    def root(self, library: str = "photos") -> Path:
        return self.tmp_path / library

    def write(self, relpath: str, seed: int, library: str = "photos") -> Path:
        """Write test image ``seed`` at ``relpath`` of ``library``."""
        path = self.root(library) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_image(seed))
        return path

    def move(self, src: str, dst: str, src_lib: str = "photos", dst_lib: str = "photos") -> None:
        target = self.root(dst_lib) / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.root(src_lib) / src, target)

    def remove(self, relpath: str, library: str = "photos") -> None:
        (self.root(library) / relpath).unlink()

    # -- syncd ------------------------------------------------------------------------------

    def scan(self, after: float = 0.0, **kwargs: object) -> ScanResult:
        """Scan every library ``after`` seconds after the previous scan's clock."""
        self.clock = max(self.clock + after, time.time())
        result = scan_libraries(self.ledger, self.config, now=self.clock, **kwargs)  # type: ignore[arg-type]
        plan_pending(self.ledger, PlanRules.of(self.config), self.clock)
        return result

    def scan_paths(
        self,
        files: Sequence[str] = (),
        subtrees: Sequence[str] = (),
        vanished: Sequence[str] = (),
        *,
        library: str = "photos",
        after: float = 0.0,
    ) -> LibraryScan:
        """A targeted scan of these paths of ``library`` (as the daemon makes for what
        settled), ``after`` seconds after the previous scan's clock; that library's result.
        The three kinds only say what the test did: the scan reads what each path is now."""
        self.clock = max(self.clock + after, time.time())
        look = LookAgain(library, (*files, *subtrees, *vanished))
        result = scan_paths(self.ledger, self.config, [look], now=self.clock)
        # the watcher saw these: the live lane, as the daemon plans them
        plan_pending(self.ledger, PlanRules.of(self.config), self.clock, live=True)
        return next(lib for lib in result.libraries if lib.name == library)

    def sync(self, max_rounds: int = 10) -> list[Call]:
        """Play every due intent as a successful call; the calls, in order."""
        calls: list[Call] = []
        for _ in range(max_rounds):
            with self.ledger.transaction() as session:
                intents = claim_due_intents(session, "test-engine", self.clock, limit=10_000)
                # adds are recorded as the workers' group commit does (record_adds)
                added: list[AddedItem] = []
                for intent in intents:
                    if intent.op == "add":
                        self._next_sign += 1
                        sign = f"sign-{self._next_sign}"
                        added.append(
                            AddedItem(intent.item_id, sign, intent.brief, intent.tags, self.clock)
                        )
                        calls.append(Call("add", brief_path(intent.brief) or "", intent.gallery))
                    elif intent.op == "update":
                        record_updated(
                            session,
                            intent.item_id,
                            "test-engine",
                            intent.brief,
                            intent.tags,
                            self.clock,
                        )
                        calls.append(Call("update", brief_path(intent.brief) or "", intent.gallery))
                    else:
                        item = session.get(Item, intent.item_id)
                        assert item is not None
                        path = brief_path(item.have_brief or "") or ""
                        record_deleted(session, [intent.item_id], "test-engine", self.clock)
                        calls.append(Call("delete", path, intent.gallery))
                record_adds(session, added, "test-engine")
            if not intents:
                return calls
        raise AssertionError(f"intents still due after {max_rounds} rounds: {calls}")

    def items(self) -> list[Item]:
        """Every item row."""
        with self.ledger.transaction() as session:
            return list(session.scalars(select(Item).order_by(Item.id)))

    def gallery(self) -> dict[str, str]:
        """cont_sign -> brief path of every item the fake gallery holds."""
        return {
            item.cont_sign: brief_path(item.have_brief or "") or ""
            for item in self.items()
            if item.cont_sign is not None
        }

    def files(self, library: str = "photos") -> dict[str, File]:
        """relpath -> file row of ``library``."""
        with self.ledger.transaction() as session:
            rows = session.scalars(
                select(File)
                .join(Library, File.library_id == Library.id)
                .where(Library.name == library)
            )
            return {row.relpath: row for row in rows}
