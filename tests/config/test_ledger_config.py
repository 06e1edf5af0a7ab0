"""The ``[ledger]`` table: SQLite at ``path``, or PostgreSQL at ``url`` with
its password from a file or the environment, and this host's local state in ``state_dir``."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import LedgerConfig, load_config
from syncd.errors import ConfigError

LIBRARY = '[[library]]\nname = "photos"\nroot = "./photos"\ngallery = "similar"\n'
URL = "postgresql://syncd@db.example/syncd"


def _load(tmp_path: Path, ledger: str) -> LedgerConfig:
    path = tmp_path / "config.toml"
    path.write_text("[ledger]\n" + ledger + LIBRARY, encoding="utf-8")
    path.chmod(0o600)
    return load_config(path).ledger


def _error(tmp_path: Path, ledger: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, ledger)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.fixture(autouse=True)
def _no_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCD_LEDGER_PASSWORD", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def test_sqlite_is_the_default_and_needs_no_url(tmp_path: Path) -> None:
    ledger = _load(tmp_path, "")
    assert not ledger.shared and ledger.url == ""
    assert ledger.path == Path("/var/lib/syncd/ledger.db")


def test_a_postgresql_ledger_keeps_local_state_in_the_default_folder(tmp_path: Path) -> None:
    ledger = _load(tmp_path, f'url = "{URL}"\n')
    assert ledger.shared and ledger.url == URL
    assert ledger.path == Path("/var/lib/syncd/ledger.db")  # lock and spool anchor only
    assert ledger.password == ""  # left to libpq: PGPASSFILE, ~/.pgpass


def test_state_dir_moves_the_local_state_of_a_postgresql_ledger(tmp_path: Path) -> None:
    ledger = _load(tmp_path, f'url = "{URL}"\nstate_dir = "./state"\n')
    assert ledger.path == tmp_path / "state" / "ledger.db"


def test_url_and_path_together_are_refused_naming_both(tmp_path: Path) -> None:
    error = _error(tmp_path, f'url = "{URL}"\npath = "./l.db"\n')
    assert error.startswith("ledger.path and ledger.url: set one")


@pytest.mark.parametrize(
    ("ledger", "message"),
    [
        ('url = "mysql://db/syncd"\n', 'ledger.url: expected a postgresql:// URL, got "mysql:'),
        ('password_file = "pw"\n', "ledger.password_file: only with ledger.url"),
        ('state_dir = "./s"\n', "ledger.state_dir: only with ledger.url"),
        ('url = 5\n', "ledger.url: expected a string, got 5"),
    ],
)
def test_a_wrong_ledger_key_is_named(tmp_path: Path, ledger: str, message: str) -> None:
    assert message in _error(tmp_path, ledger)


@pytest.mark.parametrize(
    "url",
    ["postgresql://syncd:hunter2-pw@db/syncd", "postgresql://syncd@db/syncd?password=hunter2-pw"],
)
def test_a_password_in_the_url_is_refused_without_showing_it(tmp_path: Path, url: str) -> None:
    error = _error(tmp_path, f'url = "{url}"\n')
    assert error == (
        "ledger.url: holds a password; put it in ledger.password_file or "
        "$SYNCD_LEDGER_PASSWORD instead"
    )


def test_the_password_comes_from_its_file_and_never_shows(tmp_path: Path) -> None:
    (tmp_path / "ledger-pw").write_text("db-pass-31\n", encoding="utf-8")
    ledger = _load(tmp_path, f'url = "{URL}"\npassword_file = "ledger-pw"\n')
    assert ledger.password == "db-pass-31"
    assert "db-pass-31" not in repr(ledger)


def test_the_password_from_the_environment_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_LEDGER_PASSWORD", "from-env")
    ledger = _load(tmp_path, f'url = "{URL}"\npassword_file = "absent"\n')
    assert ledger.password == "from-env"


def test_a_missing_password_file_is_named(tmp_path: Path) -> None:
    error = _error(tmp_path, f'url = "{URL}"\npassword_file = "absent"\n')
    assert error.startswith("ledger.password_file: no such file")
