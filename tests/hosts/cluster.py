"""Several hosts on one ledger, on this machine: each ``Host`` is a real ``syncd`` process
(``reconcile`` or ``run``) with its own ``host.name``, config and library roots, all on one
shared ledger (a SQLite file, or a PostgreSQL database) and the local gallery server.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from ledgers import LedgerChoice

from devkit.imagegen import make_image
from syncd.gallery.server import GalleryServer

SYNCD = str(Path(sys.executable).with_name("syncd"))
#: the keys of the ``gallery_server`` fixture (tests/conftest.py)
GALLERY_API_KEY = "test-ak"
GALLERY_SECRET_KEY = "test-sk"
GALLERY = "same_hq"
#: deadlines for convergence, not speed assertions (seconds)
CONVERGE = 120.0


@dataclass(frozen=True)
class Outcome:
    """What a command did: exit code, stdout, stderr."""

    code: int
    out: str
    err: str


def wait_until(check: Callable[[], bool], timeout: float = CONVERGE, what: str = "") -> None:
    """Poll ``check`` until it holds; fail the test with ``what`` when ``timeout`` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}")


class Host:
    """One host: ``base/<name>/`` holds its config and library roots ``<library>/``.

    ``shared_state``: the folder of the shared SQLite ledger (ignored for PostgreSQL, where
    each host keeps its local state in its own folder).
    """

    def __init__(
        self,
        base: Path,
        name: str,
        server: GalleryServer,
        ledger: LedgerChoice,
        shared_state: Path,
        *,
        libraries: tuple[str, ...] | None = None,
        qps: float = 1000.0,
        concurrency: int = 2,
        api_key: str = GALLERY_API_KEY,
        delete_grace: float = 0.0,
        settle: float = 0.0,
        rules: tuple[tuple[str, tuple[int, ...]], ...] = (),
    ) -> None:
        self.name = name
        self.server = server
        self.folder = base / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.libraries = libraries if libraries is not None else (f"lib-{name}",)
        state = shared_state if ledger.kind == "sqlite" else self.folder / "state"
        lines = [
            "[api]",
            f'endpoint = "{server.url}"',
            f'api_key = "{api_key}"',
            f'secret_key = "{GALLERY_SECRET_KEY}"',
            f"qps = {qps}",
            f"concurrency = {concurrency}",
            "timeout = 10.0",
            "[ledger]",
            *ledger.toml_lines(str(state)),
            "[host]",
            f'name = "{name}"',
            "[watch]",
            f"settle = {settle}",
            f"delete_grace = {delete_grace}",
            "rescan_interval = 0",
            "[safety]",
            "max_delete_fraction = 1.0",
        ]
        for lib in self.libraries:
            (self.folder / lib).mkdir(exist_ok=True)
            lines += ["[[library]]", f'name = "{lib}"', f'root = "./{lib}"', f'gallery = "{GALLERY}"']
            for glob, tags in rules:
                lines += ["[[library.rule]]", f'glob = "{glob}"', f"tags = {list(tags)}"]
        self.config = self.folder / "config.toml"
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.config.chmod(0o600)
        self.log = self.folder / "run.log"
        self._run: subprocess.Popen[bytes] | None = None

    def root(self, library: str | None = None) -> Path:
        """The root of ``library`` (the host's first by default)."""
        return self.folder / (library or self.libraries[0])

    def write(self, relpath: str, seed: int, library: str | None = None) -> Path:
        """Put test picture ``seed`` at ``relpath`` under a library root."""
        path = self.root(library) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_image(seed, size=(32, 32)))
        return path

    def disk(self) -> dict[str, str]:
        """``library/relpath`` -> sha256 of every file under the host's roots."""
        found: dict[str, str] = {}
        for lib in self.libraries:
            for dirpath, _dirs, files in os.walk(self.root(lib)):
                for name in files:
                    path = Path(dirpath) / name
                    rel = path.relative_to(self.root(lib)).as_posix()
                    found[f"{lib}/{rel}"] = hashlib.sha256(path.read_bytes()).hexdigest()
        return found

    # -- processes ----------------------------------------------------------------------

    def syncd(self, *args: str, timeout: float = CONVERGE) -> Outcome:
        """Run ``syncd <args> -c <config>`` as a process of its own and wait for it (the
        first of ``args`` may name a subcommand: ``"ledger release-host"``)."""
        command, *rest = args
        done = subprocess.run(
            [SYNCD, *command.split(), "-c", str(self.config), *rest],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``syncd <args> -c <config>``; its output goes to ``self.log``."""
        command, *rest = args
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [SYNCD, command, "-c", str(self.config), *rest], stdout=out, stderr=out
            )

    def start(self) -> None:
        """Start ``syncd run`` and wait until its first scan is recorded."""
        self._run = self.popen("run")

    def stop(self) -> int:
        """SIGTERM ``syncd run`` and wait for it; its exit code."""
        proc, self._run = self._run, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def kill(self) -> None:
        """``kill -9`` the running ``syncd run``."""
        proc, self._run = self._run, None
        if proc is not None:
            proc.kill()
            proc.wait()

    def running(self) -> bool:
        """Whether ``syncd run`` still runs."""
        return self._run is not None and self._run.poll() is None

    def logged(self) -> str:
        """What ``syncd run`` wrote so far."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def status(self) -> dict[str, object]:
        """``syncd status --json`` of this host."""
        outcome = self.syncd("status", "--json")
        assert outcome.code == 0, outcome
        data: dict[str, object] = json.loads(outcome.out)
        return data


@dataclass(frozen=True)
class GalleryItem:
    """One live item of the gallery: its cont_sign and the library/path its brief names."""

    cont_sign: str
    library: str
    path: str
    tags: tuple[int, ...] = ()

    @property
    def where(self) -> str:
        """``library/path``."""
        return f"{self.library}/{self.path}"


def gallery_items(server: GalleryServer) -> list[GalleryItem]:
    """The live items of the gallery the hosts feed."""
    params = {"gallery": GALLERY, "access_token": server.access_token()}
    answer = requests.get(f"{server.url}/_syncd/items", params=params, timeout=30)
    answer.raise_for_status()
    items = []
    for entry in answer.json()["items"]:
        brief = json.loads(entry["brief"])
        tags = tuple(entry.get("tags") or ())
        items.append(GalleryItem(entry["cont_sign"], brief["lib"], brief["path"], tags))
    return items


def gallery_calls(server: GalleryServer) -> dict[str, int]:
    """operation -> API calls the gallery received since the last reset."""
    return {op: n for (g, op), n in server.call_counts().items() if g == GALLERY and n}


def assert_mirrors(server: GalleryServer, hosts: list[Host]) -> None:
    """The gallery holds one item per distinct image on the hosts' disks, each brief naming
    a path that holds that image: nothing missing, nothing extra, no duplicates."""
    disk: dict[str, str] = {}
    for host in hosts:
        disk.update(host.disk())
    items = gallery_items(server)
    for item in items:
        assert item.where in disk, f"item {item.cont_sign} names {item.where}, not on disk"
    held = [disk[item.where] for item in items]
    assert len(held) == len(set(held)), "two items hold the same image"
    assert set(held) == set(disk.values()), "some image on disk has no item"
