"""The config file (README, Configuration): defaults, validation that names the key, paths,
secrets."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import cli
from syncd.config import (
    DEFAULT_CONFIG_PATH,
    ApiConfig,
    LibraryConfig,
    SafetyConfig,
    WatchConfig,
    config_path,
    load_config,
)
from syncd.errors import ConfigError
from syncd.paths.filters import WalkFilter

REPO = Path(__file__).resolve().parents[2]
LIBRARY = '[[library]]\nname = "photos"\nroot = "./photos"\ngallery = "similar"\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    return str(info.value)


@pytest.fixture(autouse=True)
def _no_secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SYNCD_API_KEY", "SYNCD_SECRET_KEY", "SYNCD_CONFIG", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)


def test_a_minimal_config_takes_every_default(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, LIBRARY))
    assert config.api == ApiConfig()
    assert config.watch == WatchConfig()
    assert config.safety == SafetyConfig()
    assert config.ledger.path == Path("/var/lib/syncd/ledger.db")
    (lib,) = config.libraries
    assert lib.root == tmp_path / "photos"
    assert lib.include[0] == "*.jpg" and lib.oversize == "downscale" and lib.rules == ()


def test_the_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(REPO / "config.example.toml")
    assert config.api.endpoint == "embedded"
    assert config.ledger.path == REPO / "syncd-data" / "ledger.db"
    (lib,) = config.libraries
    assert (lib.name, lib.gallery, lib.root) == ("samples", "similar", REPO / "sample-images")
    assert lib.rules[0].tags == (100, 11)


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, '[ledger]\npath = "data/l.db"\n' + LIBRARY))
    assert config.ledger.path == tmp_path / "data" / "l.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[api]\nqpss = 3\n" + LIBRARY, "api.qpss: unknown key; did you mean `qps`?"),
        ("[api]\nzzz = 3\n" + LIBRARY, "api.zzz: unknown key (expected one of endpoint, auth,"),
        ("colour = 1\n" + LIBRARY, "colour: unknown key"),
        (LIBRARY + "nmae = 1\n", "library[1].nmae: unknown key"),
        ('[api]\nqps = "fast"\n' + LIBRARY, 'api.qps: expected a number > 0, got "fast"'),
        ("[api]\nqps = 0\n" + LIBRARY, "api.qps: expected a number > 0, got 0"),
        (
            "[api]\nconcurrency = 2.5\n" + LIBRARY,
            "api.concurrency: expected an integer >= 1, got 2.5",
        ),
        ('[api]\nauth = "basic"\n' + LIBRARY, 'api.auth: expected one of token, bce, got "basic"'),
        ('[api]\nendpoint = "ftp://x"\n' + LIBRARY, 'api.endpoint: expected "embedded" or an'),
        ('[watch]\npolling = "yes"\n' + LIBRARY, 'watch.polling: expected "auto", true or false'),
        ('[watch]\nignore = "*.tmp"\n' + LIBRARY, "watch.ignore: expected a list of strings"),
        ("[safety]\nmax_delete_fraction = 2\n" + LIBRARY, "safety.max_delete_fraction: expected"),
        ('[metrics]\nlisten = "9108"\n' + LIBRARY, 'metrics.listen: expected "host:port"'),
        (
            '[metrics]\nlisten = "127.0.0.1:0"\n' + LIBRARY,
            "metrics.listen: port 0 is out of range (1-65535)",
        ),
        (
            '[console]\nlisten = "127.0.0.1:99999"\n' + LIBRARY,
            "console.listen: port 99999 is out of range (1-65535)",
        ),
        ("api = 3\n" + LIBRARY, "api: expected a table, got 3"),
        ("", "library: at least one [[library]] table is required"),
        (
            '[[library]]\nname = "x"\ngallery = "similar"\n',
            "library[1].root: required key is missing",
        ),
        (
            LIBRARY + 'follow_symlinks = "no"\n',
            "library[1].follow_symlinks: expected true or false",
        ),
        (LIBRARY + LIBRARY, 'library[2].name: "photos" is used by an earlier library'),
        (
            LIBRARY + '[[library.rule]]\nglob = "a/**"\ntags = [1, 2, 3]\n',
            "library[1].rule[1].tags: expected a list of at most 2 integers 1..65535",
        ),
        (
            LIBRARY + '[[library.rule]]\nglob = "a/**"\ntags = [0]\n',
            "library[1].rule[1].tags: expected a list of at most 2 integers 1..65535 (tags), got [0]",
        ),
        (
            LIBRARY.replace("similar", "product")
            + '[[library.rule]]\nglob = "a"\ntags = [70000]\n',
            "(class_id1, class_id2), got [70000]",
        ),
        (
            LIBRARY + '[[library.rule]]\nglob = "/"\ntags = [1]\n',
            "library[1].rule[1].glob: empty glob",
        ),
        (LIBRARY + 'include = ["*.jpg", ""]\n', "library[1].include: empty glob pattern"),
        ('[watch]\nignore = ["a/b"]\n' + LIBRARY, "watch.ignore: ignore pattern 'a/b' must be"),
    ],
)
def test_a_wrong_key_is_named_with_what_was_expected(
    tmp_path: Path, text: str, message: str
) -> None:
    error = _error(tmp_path, text)
    assert message in error
    assert "\n" not in error


def test_a_bad_gallery_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    text = LIBRARY + '[[library]]\nname = "b"\nroot = "./b"\ngallery = "foo"\n'
    path = _write(tmp_path, text)
    result = CliRunner().invoke(cli, ["status", "-c", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        'library[2].gallery: expected one of same_hq, similar, product, got "foo"\n'
    )
    assert result.stdout == ""


def test_a_toml_syntax_error_exits_2_with_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "[api\n")
    result = CliRunner().invoke(cli, ["reconcile", "--dry-run", "-c", str(path)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "not valid TOML" in result.stderr


def test_a_misspelled_required_key_is_named_with_the_key_it_resembles(tmp_path: Path) -> None:
    text = '[[library]]\nname = "photos"\nroot = "./photos"\ngalery = "same_hq"\n'
    path = _write(tmp_path, text)
    result = CliRunner().invoke(cli, ["status", "-c", str(path)])
    assert result.exit_code == 2
    assert result.stderr == "library[1].galery: unknown key; did you mean `gallery`?\n"


def test_a_typo_is_named_before_a_password_file_missing_in_a_copied_config(
    tmp_path: Path,
) -> None:
    # copied to another host: the console's password file did not come along
    text = (
        '[console]\nlisten = "0.0.0.0:8765"\npassword_file = "./console-password"\n'
        + LIBRARY
        + 'exlcude = ["*.raw"]\n'
    )
    assert _error(tmp_path, text) == "library[1].exlcude: unknown key; did you mean `exclude`?"
    fixed = text.replace("exlcude", "exclude")
    assert _error(tmp_path, fixed).startswith("console.password_file: no such file")


def test_a_bad_value_is_named_before_a_missing_secret_file(tmp_path: Path) -> None:
    text = '[api]\nsecret_key_file = "./gone"\n[safety]\nmax_delete_fraction = 5\n' + LIBRARY
    assert _error(tmp_path, text).startswith("safety.max_delete_fraction: expected a number")


def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "-c", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "cannot read the config file" in result.stderr


def test_the_config_path_comes_from_the_option_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert config_path(None) == DEFAULT_CONFIG_PATH
    monkeypatch.setenv("SYNCD_CONFIG", "/x/env.toml")
    assert config_path(None) == Path("/x/env.toml")
    assert config_path("/x/cli.toml") == Path("/x/cli.toml")


def test_polling_takes_auto_true_or_false(tmp_path: Path) -> None:
    for value, mode in (('"auto"', "auto"), ("true", "on"), ("false", "off")):
        config = load_config(_write(tmp_path, f"[watch]\npolling = {value}\n" + LIBRARY))
        assert config.watch.polling == mode


def test_keys_from_the_environment_override_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_API_KEY", "env-ak")
    monkeypatch.setenv("SYNCD_SECRET_KEY", "env-sk")
    config = load_config(_write(tmp_path, '[api]\napi_key = "ak"\nsecret_key = "sk"\n' + LIBRARY))
    assert (config.api.api_key, config.api.secret_key) == ("env-ak", "env-sk")


def test_the_secret_is_read_from_a_file_without_its_newline(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n", encoding="utf-8")
    config = load_config(_write(tmp_path, '[api]\nsecret_key_file = "secret"\n' + LIBRARY))
    assert config.api.secret_key == "s3cret"


def test_a_secret_file_name_is_looked_up_in_systemd_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "syncd-sk").write_text("from-systemd\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config = load_config(_write(tmp_path, '[api]\nsecret_key_file = "syncd-sk"\n' + LIBRARY))
    assert config.api.secret_key == "from-systemd"


def test_a_missing_secret_file_is_named_and_no_secret_is_shown(tmp_path: Path) -> None:
    error = _error(tmp_path, '[api]\nsecret_key_file = "gone"\n' + LIBRARY)
    assert error.startswith("api.secret_key_file: no such file")


def test_the_secret_never_shows_in_the_config_repr(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, '[api]\nsecret_key = "top-secret-value"\n' + LIBRARY))
    assert "top-secret-value" not in repr(config)


def test_a_config_holding_the_secret_readable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path, '[api]\nsecret_key = "top-secret-value"\n' + LIBRARY)
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING):
        load_config(path)
    assert "readable by group/others" in caplog.text
    assert "top-secret-value" not in caplog.text
    caplog.clear()
    os.chmod(path, 0o600)
    with caplog.at_level(logging.WARNING):
        load_config(path)
    assert caplog.text == ""


def test_the_default_globs_and_the_system_folder_names_compile() -> None:
    # a config load compiles only the globs written: these are first compiled by a walk
    library = LibraryConfig("photos", Path("photos"), "similar")
    walk = WalkFilter.for_library(library, WatchConfig())
    assert walk.include.patterns == library.include
    assert walk.ignores_name("@eaDir") and walk.ignores_name("x.tmp")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[watch]\nignore = ["!@eaDir", "[z-a]"]\n' + LIBRARY,
            "watch.ignore: bad ignore pattern '[z-a]'",
        ),
        ('[watch]\nignore = ["!@eaDirr"]\n' + LIBRARY, "watch.ignore: '!@eaDirr' takes back no"),
        (
            LIBRARY + 'include = ["*.jpg", "[z-a]"]\n',
            "library[1].include: bad glob pattern '[z-a]'",
        ),
        (LIBRARY + 'exclude = ["a/[z-a]/**"]\n', "library[1].exclude: bad glob pattern"),
    ],
)
def test_a_glob_written_that_does_not_compile_is_named(
    tmp_path: Path, text: str, message: str
) -> None:
    assert _error(tmp_path, text).startswith(message)
