"""``[host] name``: which host of a shared ledger this config is."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from syncd.config import ConfigError, parse_config

LIBRARY = {"name": "photos", "root": "photos", "gallery": "same_hq"}


def config_with(host: dict[str, Any] | None, tmp_path: Path) -> Any:
    data: dict[str, Any] = {"library": [LIBRARY]}
    if host is not None:
        data["host"] = host
    return parse_config(data, base_dir=tmp_path, environ={})


def test_a_host_is_named_after_the_machine_unless_the_config_names_it(tmp_path: Path) -> None:
    assert config_with(None, tmp_path).host.name == socket.gethostname()[:40]
    assert config_with({"name": "files-east"}, tmp_path).host.name == "files-east"


@pytest.mark.parametrize("bad", ["a b", "-x", "x" * 41, "host/1", 7])
def test_a_host_name_that_cannot_head_a_claim_is_refused_naming_the_key(
    tmp_path: Path, bad: object
) -> None:
    with pytest.raises(ConfigError, match=r"^host\.name: expected"):
        config_with({"name": bad}, tmp_path)


def test_hosts_sharing_a_ledger_folder_keep_their_own_lock_and_spool(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    machine = config_with(None, tmp_path).host
    other = config_with({"name": "files-east"}, tmp_path).host

    assert machine.local_path(ledger, ".lock") == tmp_path / "ledger.db.lock"
    assert other.local_path(ledger, ".inflight") == tmp_path / "ledger.db.files-east.inflight"
