"""One installation for end-to-end tests: real library folders, a real config file and
ledger, the real local gallery server over loopback, and the real ``syncd`` command line.

``Site`` is one installation: ``site.write(relpath, seed)`` puts a test picture on disk,
``site.syncd("reconcile")`` runs a command, ``site.items()`` is what the gallery holds.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import requests
from click.testing import CliRunner
from ledgers import LedgerChoice

from devkit.imagegen import make_image
from syncd.cli import cli
from syncd.config import load_config
from syncd.gallery.server import GalleryServer
from syncd.ledger.models import Base
from syncd.ledger.schema import Ledger, open_ledger

#: the keys of the ``gallery_server`` fixture (tests/conftest.py)
GALLERY_API_KEY = "test-ak"
GALLERY_SECRET_KEY = "test-sk"
#: small pictures keep the suite fast; the gallery takes anything from 15 px up
SIDE = 32


@dataclass(frozen=True)
class Outcome:
    """What a command did: exit code, stdout, stderr."""

    code: int
    out: str
    err: str


@dataclass(frozen=True)
class GalleryItem:
    """One live item of the gallery, as ``/_syncd/items`` shows it."""

    cont_sign: str
    brief: str
    tags: tuple[int, ...]

    @property
    def path(self) -> str:
        """The relative path the brief names."""
        return str(json.loads(self.brief)["path"])

    @property
    def library(self) -> str:
        """The library the brief names."""
        return str(json.loads(self.brief)["lib"])


class Site:
    """A library folder ``root`` (library "photos"), its config, ledger and gallery."""

    def __init__(
        self,
        tmp_path: Path,
        server: GalleryServer,
        *,
        gallery: str = "same_hq",
        qps: float = 1000.0,
        concurrency: int = 4,
        delete_grace: float = 0.0,
        delete_latency: float = 14400.0,
        max_delete_fraction: float = 1.0,
        extra_libraries: tuple[str, ...] = (),
        rules: tuple[tuple[str, tuple[int, ...]], ...] = (),
        ledger: LedgerChoice | None = None,
        daily_budget: int = 0,
        qps_schedule: str = "",
    ) -> None:
        self.tmp_path = tmp_path
        self.server = server
        self.gallery = gallery
        self.root = tmp_path / "photos"
        self.root.mkdir()
        #: the SQLite ledger, or with PostgreSQL the anchor of the local state (lock, spool)
        self.ledger = tmp_path / "state" / "ledger.db"
        self.ledger_choice = ledger or LedgerChoice("sqlite")
        lines = [
            "[api]",
            f'endpoint = "{server.url}"',
            f'api_key = "{GALLERY_API_KEY}"',
            f'secret_key = "{GALLERY_SECRET_KEY}"',
            f"qps = {qps}",
            f"concurrency = {concurrency}",
            "timeout = 10.0",
            f"daily_budget = {daily_budget}",
            *([f'qps_schedule = "{qps_schedule}"'] if qps_schedule else []),
            "[ledger]",
            *self.ledger_choice.toml_lines("./state"),
            "[watch]",
            "settle = 0.0",
            f"delete_grace = {delete_grace}",
            "[safety]",
            f"max_delete_fraction = {max_delete_fraction}",
            f"delete_latency = {delete_latency}",
            "[[library]]",
            'name = "photos"',
            'root = "./photos"',
            f'gallery = "{gallery}"',
        ]
        for glob, tags in rules:
            lines += ["[[library.rule]]", f'glob = "{glob}"', f"tags = {list(tags)}"]
        for name in extra_libraries:
            (tmp_path / name).mkdir()
            lines += [
                "[[library]]",
                f'name = "{name}"',
                f'root = "./{name}"',
                f'gallery = "{gallery}"',
            ]
        self.config = tmp_path / "config.toml"
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.config.chmod(0o600)

    # -- the disk -----------------------------------------------------------------------

    def write(self, relpath: str, seed: int, *, root: Path | None = None) -> Path:
        """Put test picture ``seed`` at ``relpath`` under the library root."""
        path = (root or self.root) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_image(seed, size=(SIDE, SIDE)))
        return path

    def disk(self) -> dict[str, str]:
        """relpath -> sha256 of every file under the library root."""
        found = {}
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                path = Path(dirpath) / name
                found[path.relative_to(self.root).as_posix()] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
        return found

    # -- the command line ---------------------------------------------------------------

    def syncd(self, *args: str) -> Outcome:
        """Run ``syncd <args> -c <config>`` in this process (``"ledger migrate"``: a
        command of a group is one argument)."""
        command, *rest = args
        result = CliRunner().invoke(cli, [*command.split(), "-c", str(self.config), *rest])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Outcome(result.exit_code, result.stdout, result.stderr)

    # -- the ledger -------------------------------------------------------------------

    def open_ledger(self, create: bool = True) -> Ledger:
        """The site's ledger, as its config names it (close it when done)."""
        return open_ledger(load_config(self.config).ledger, create=create)

    def switch_ledger(self, choice: LedgerChoice) -> None:
        """Point the config at another ledger (as a user does after `syncd ledger migrate`)."""
        old = "\n".join(self.ledger_choice.toml_lines("./state"))
        text = self.config.read_text(encoding="utf-8")
        self.config.write_text(
            text.replace(old, "\n".join(choice.toml_lines("./state"))), encoding="utf-8"
        )
        self.ledger_choice = choice

    def forget_ledger(self) -> None:
        """Lose the ledger as `rm ledger.db*` would (PostgreSQL: every table dropped); the
        lost-add spool folder stays."""
        if self.ledger_choice.kind == "postgresql":
            ledger = self.open_ledger()
            try:
                Base.metadata.drop_all(ledger.engine)
            finally:
                ledger.close()
            return
        for leftover in self.ledger.parent.glob("ledger.db*"):
            if leftover.is_file():
                leftover.unlink()

    # -- the gallery --------------------------------------------------------------------

    def items(self) -> list[GalleryItem]:
        """The live items of the site's gallery."""
        answer = requests.get(
            f"{self.server.url}/_syncd/items",
            params={"gallery": self.gallery, "access_token": self.server.access_token()},
            timeout=10,
        )
        answer.raise_for_status()
        return [
            GalleryItem(
                entry["cont_sign"],
                entry["brief"],
                tuple(
                    entry.get("tags")
                    or [t for t in (entry.get("class_id1"), entry.get("class_id2")) if t]
                ),
            )
            for entry in answer.json()["items"]
        ]

    def calls(self) -> dict[str, int]:
        """op -> API calls the gallery received for the site's gallery since the last reset."""
        counts = self.server.call_counts()
        return {op: n for (gallery, op), n in counts.items() if gallery == self.gallery and n}

    def assert_mirrors_disk(self) -> None:
        """The gallery holds exactly one item per distinct image on disk, each brief naming
        a path that holds that image: nothing missing, nothing extra, no duplicates."""
        self.assert_mirrors_disk_but()

    def assert_mirrors_disk_but(self, *refused: str) -> None:
        """:meth:`assert_mirrors_disk`, files at the paths ``refused`` (not images) aside."""
        disk = {path: digest for path, digest in self.disk().items() if path not in refused}
        items = self.items()
        named = [item.path for item in items]
        assert len(named) == len(set(named)), f"two items name one path: {sorted(named)}"
        for item in items:
            assert item.library == "photos", item
            assert item.path in disk, f"item {item.cont_sign} names {item.path}, not on disk"
        held = {disk[item.path] for item in items}
        assert len(held) == len(items), "two items hold the same image"
        assert held == set(disk.values()), "some image on disk has no item"


#: pictures :func:`status_site` syncs into ``photos``; all but STATUS_KEPT then vanish in one
#: scan, so their deletes are held
STATUS_PICTURES = 14
STATUS_KEPT = 3


def status_site(
    tmp_path: Path, server: GalleryServer, *, daily_budget: int = 0, qps_schedule: str = ""
) -> Site:
    """The installation the status tests read, made by real reconciles: libraries ``photos``
    and ``shop`` (one picture), ``photos/broken.jpg`` refused (not a picture), then all but
    STATUS_KEPT of photos' STATUS_PICTURES pictures gone at once, so their deletes are held
    (``max_delete_fraction`` 0.25); a console on a free loopback port, without a password."""
    site = Site(
        tmp_path, server, max_delete_fraction=0.25, extra_libraries=("shop",),
        daily_budget=daily_budget, qps_schedule=qps_schedule,
    )  # fmt: skip
    with site.config.open("a", encoding="utf-8") as config:
        config.write('[console]\nlisten = "127.0.0.1:0"\n')
    for seed in range(1, STATUS_PICTURES + 1):
        site.write(f"pics/p{seed:02d}.jpg", seed)
    site.write("s.jpg", 50, root=tmp_path / "shop")
    (site.root / "broken.jpg").write_bytes(b"this is not a picture at all")
    assert site.syncd("reconcile").code == 1  # broken.jpg is refused
    for seed in range(STATUS_KEPT + 1, STATUS_PICTURES + 1):
        (site.root / f"pics/p{seed:02d}.jpg").unlink()
    assert "held" in site.syncd("reconcile").out
    return site
