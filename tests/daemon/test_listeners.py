"""`syncd run` takes the addresses of /metrics and the console before it starts anything: an
address already taken is named with its config key, and the service exits without having
opened the ledger or served /metrics. A real `syncd run` process.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from .conftest import CONVERGE, Daemon, calls, free_port, write_image


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another program listens on while the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("taken", ["console", "metrics"])
def test_a_taken_address_is_named_with_its_key_and_nothing_starts(
    daemon: Daemon, taken_port: int, taken: str
) -> None:
    free = f"127.0.0.1:{free_port()}"
    busy = f"127.0.0.1:{taken_port}"
    daemon.console_listen = busy if taken == "console" else free
    daemon.metrics_listen = busy if taken == "metrics" else free
    write_image(daemon.libraries[0].root / "first.jpg", 60)
    daemon.start()
    assert daemon.proc is not None
    code = daemon.proc.wait(timeout=CONVERGE)
    log = daemon.log()
    assert code == 1, log
    line = f"cannot listen on {busy} for {taken}.listen: Address already in use"
    assert line in log
    assert log.count("ERROR") == 1, log
    # nothing ran: no ledger opened, no call made, /metrics never served
    assert not (daemon.tmp / "ledger.db").exists(), log
    assert sum(calls(daemon.server).values()) == 0
    assert "metrics on" not in log and "console on" not in log, log
