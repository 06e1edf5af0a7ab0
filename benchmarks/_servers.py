"""The servers the benchmarks measure against, and how their calls are counted.

- ``running_gallery(...)``: an in-process local gallery (``GalleryServer``) on loopback.
- ``strict_gallery(data_dir, qps)``: the same, answering error 18 to any call beyond
  ``qps`` in any sliding second (no burst): the strictest limiter the real service may
  have, which ``bench_rate``, ``bench_hosts`` and ``bench_fresh`` hold ``syncd`` to.
- ``CallSampler(server)``: the gallery's call count sampled every 20 ms while a ``with``
  block runs; ``rate()`` is the steady calls per second.
- ``client_config(...)``: the config file of a ``syncd`` client of such a gallery.
- ``error_answers(stdout)``, ``print_call_counts(counts)``: what a run's output says.
- ``free_port()``, ``access_token(url)``.

Import through ``_common`` (``from _common import strict_gallery, CallSampler``). syncd is
imported inside the functions: ``run_all.py`` imports ``_common``, and a child's peak RSS
counts the memory of the parent it was forked from.
"""

from __future__ import annotations

import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from syncd.gallery.faults import FaultConfig
    from syncd.gallery.server import GalleryServer

#: credentials of the local gallery servers the benchmarks start
API_KEY: Final = "bench-ak"
SECRET_KEY: Final = "bench-sk"
#: seconds between two samples of a gallery's call count
SAMPLE_EVERY: Final = 0.02


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (another process may take it later)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def data_folder(path: Path | None, prefix: str = "syncd-bench-") -> Iterator[Path]:
    """``path`` itself, or a temporary folder removed on exit when ``path`` is None."""
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


@contextmanager
def running_gallery(
    data_dir: Path | None = None,
    faults: FaultConfig | None = None,
    threads: int = 8,
    api_key: str = API_KEY,
    secret_key: str = SECRET_KEY,
    delete_latency: float = 0.0,
) -> Iterator[GalleryServer]:
    """A started in-process GalleryServer on a free loopback port (``.url``), stopped after.

    Without ``data_dir`` its data lives in a temporary folder removed afterwards.
    """
    from syncd.gallery.faults import FaultConfig
    from syncd.gallery.server import GalleryServer

    with data_folder(data_dir) as data:
        server = GalleryServer(
            data,
            api_key=api_key,
            secret_key=secret_key,
            delete_latency=delete_latency,
            faults=faults if faults is not None else FaultConfig(),
            threads=threads,
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def strict_gallery(data_dir: Path | None, qps: float) -> Iterator[GalleryServer]:
    """``running_gallery`` answering error 18 to any call beyond ``qps`` in any sliding
    second, with no burst."""
    from syncd.gallery.faults import FaultConfig

    with running_gallery(data_dir, FaultConfig(qps_limit=qps, qps_mode="strict")) as server:
        yield server


class CallSampler:
    """The API calls ``server`` has answered, sampled every ``every`` seconds on a thread
    while the ``with`` block runs (``samples``: (perf_counter seconds, calls so far)).

    ``rate()`` is the calls between the first and the last sample that saw a change, over
    that time: the steady rate, without the client's start-up and shutdown around it.
    """

    def __init__(self, server: GalleryServer, every: float = SAMPLE_EVERY) -> None:
        self.samples: list[tuple[float, int]] = []
        self._server = server
        self._every = every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="call-sampler")

    def _sample(self) -> None:
        while not self._done.is_set():
            calls = sum(self._server.call_counts().values())
            self.samples.append((time.perf_counter(), calls))
            time.sleep(self._every)

    def __enter__(self) -> CallSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def rate(self) -> float:
        """Calls per second from the first to the last sample that saw the count change."""
        samples = self.samples
        changes = [(t, n) for (t, n), (_, before) in zip(samples[1:], samples, strict=False)
                   if n != before]  # fmt: skip
        if len(changes) < 2:
            raise RuntimeError(f"the call count changed in {len(changes)} samples: no rate")
        (t0, n0), (t1, n1) = changes[0], changes[-1]
        return (n1 - n0) / (t1 - t0)


def client_config(
    folder: Path,
    url: str,
    qps: float,
    library: str,
    ledger_lines: str = 'path = "./ledger.db"',
    host: str | None = None,
) -> Path:
    """``folder/config.toml`` of a ``syncd`` client of the gallery at ``url``: its keys,
    ``api.qps = qps``, ``api.concurrency = 4``, no settle, one library ``library`` at
    ``folder/library`` syncing to same_hq; ``[ledger]`` holds ``ledger_lines``, ``[host]``
    names ``host`` when given."""
    config = folder / "config.toml"
    host_lines = f'[host]\nname = "{host}"\n' if host is not None else ""
    config.write_text(
        f'[api]\nendpoint = "{url}"\napi_key = "{API_KEY}"\n'
        f'secret_key = "{SECRET_KEY}"\nqps = {qps}\nconcurrency = 4\n'
        f"[ledger]\n{ledger_lines}\n{host_lines}[watch]\nsettle = 0.0\n"
        f'[[library]]\nname = "{library}"\nroot = "./library"\ngallery = "same_hq"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    return config


def error_answers(stdout: str) -> int:
    """The calls a ``syncd reconcile`` says were answered with an error (0 when it says none)."""
    match = re.search(r"(\d+) answered with an error", stdout)
    return int(match.group(1)) if match else 0


def print_call_counts(counts: Mapping[tuple[str, str], int]) -> None:
    """The gallery's API calls per gallery and operation, one line each."""
    print(f"{'operation':<18}{'calls':>8}")
    for (gallery, op), n in sorted(counts.items()):
        print(f"{gallery + '/' + op:<18}{n:>8}")


def access_token(url: str, api_key: str = API_KEY, secret_key: str = SECRET_KEY) -> str:
    """An access_token from the gallery at ``url`` (client-credentials grant)."""
    import requests

    answer = requests.post(
        f"{url}/oauth/2.0/token",
        params={"grant_type": "client_credentials", "client_id": api_key,
                "client_secret": secret_key},
        timeout=10,
    )  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["access_token"])
