"""What an operator reads and types: a wrong library root is caught, and every usage error is
one line on stderr saying what is wrong, exit 2. The installed ``syncd``, in a process of its
own, where the output's form is the point; the help text walked through click.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import click
import pytest
from watch.userns import in_user_namespace, user_namespace_problem

from syncd.cli import cli

from .test_reconcile_process import SYNCD, picture, syncd, write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose library root ``./photos`` holds one picture."""
    picture(tmp_path / "photos", "a.jpg", 1)
    return write_config(tmp_path)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command wrote on stderr (and nothing on stdout)."""
    assert done.returncode == 2, done
    assert done.stdout == "", done
    assert done.stderr.count("\n") == 1, done.stderr
    return done.stderr.rstrip("\n")


def test_check_passes_with_each_library_root(config: Path, tmp_path: Path) -> None:
    done = syncd("check", "-c", str(config))
    assert done.returncode == 0, done
    assert f"ok  library photos: root {tmp_path / 'photos'}" in done.stdout.splitlines()


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (None, "does not exist"),
        ("file", "is not a directory"),
        ("empty", "is empty"),
    ],
)
def test_a_wrong_root_fails_check_naming_the_library_and_the_root(
    tmp_path: Path, make: str | None, problem: str
) -> None:
    root = tmp_path / "photoz"
    if make == "file":
        root.write_text("not a folder")
    elif make == "empty":
        root.mkdir()
    config = write_config(tmp_path, "./photoz")
    done = syncd("check", "-c", str(config))
    assert done.returncode == 2, done
    assert done.stderr == f"FAILED  library photos: root {root} {problem}\n"
    # the endpoint and the ledger are still checked and said
    assert "ok  endpoint: the embedded local gallery" in done.stdout


def test_status_and_reconcile_warn_of_a_wrong_root_and_keep_their_exit_codes(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, "./photoz")
    warning = f"warning: library photos: root {tmp_path / 'photoz'} does not exist"
    status = syncd("status", "-c", str(config))
    assert status.returncode == 0, status
    assert status.stderr.splitlines().count(warning) == 1, status.stderr
    reconcile = syncd("reconcile", "-c", str(config))
    assert reconcile.returncode == 0, reconcile
    assert reconcile.stderr.splitlines().count(warning) == 1, reconcile.stderr
    as_json = syncd("status", "--json", "-c", str(config))
    assert as_json.returncode == 0 and as_json.stdout.startswith("{"), as_json
    assert warning in as_json.stderr.splitlines()


def test_status_of_a_good_root_warns_of_nothing(config: Path) -> None:
    done = syncd("status", "-c", str(config))
    assert done.returncode == 0 and done.stderr == "", done


def test_a_misspelled_key_is_one_line_with_the_key_it_resembles(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("gallery =", "galery ="))
    line = one_line(syncd("check", "-c", str(config)))
    assert line == "library[1].galery: unknown key; did you mean `gallery`?"


def test_a_folder_given_as_the_config_is_one_line(tmp_path: Path) -> None:
    line = one_line(syncd("status", "-c", str(tmp_path)))
    assert line.startswith("syncd: ") and "is a directory" in line, line
    assert line.endswith("(see syncd status --help)")


def test_an_unreadable_config_is_one_line(config: Path) -> None:
    if problem := user_namespace_problem():
        pytest.skip(problem)
    config.chmod(0)
    # as a user the file's permission bits hold against, even where the test runs as root
    done = subprocess.run(
        in_user_namespace([SYNCD, "status", "-c", str(config)], map_root=False),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    line = one_line(done)
    assert str(config) in line and "readable" in line, line


def test_a_folder_given_as_the_image_to_search_is_one_line(config: Path, tmp_path: Path) -> None:
    line = one_line(syncd("search", "-c", str(config), str(tmp_path / "photos")))
    assert "is a directory" in line and line.endswith("(see syncd search --help)"), line


def test_top_0_is_one_line(config: Path, tmp_path: Path) -> None:
    line = one_line(syncd("search", "--top", "0", "-c", str(config), str(tmp_path / "x.jpg")))
    assert line.startswith("syncd: ") and "'--top': 0 is not in the range" in line, line


def test_an_unknown_option_is_one_line_with_the_option_it_resembles() -> None:
    line = one_line(syncd("status", "--jsn"))
    assert line == "syncd: No such option '--jsn'. Did you mean '--json'? (see syncd status --help)"


def test_an_unknown_command_is_one_line() -> None:
    assert one_line(syncd("stauts")).startswith("syncd: No such command 'stauts'.")


def test_a_port_out_of_range_is_one_line_naming_the_key(config: Path) -> None:
    config.write_text('[console]\nlisten = "127.0.0.1:99999"\n' + config.read_text())
    line = one_line(syncd("status", "-c", str(config)))
    assert line == "console.listen: port 99999 is out of range (1-65535)"


def _commands(group: click.Group, path: str) -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _commands(command, f"{path} {name}")
        else:
            out.append((f"{path} {name}", command))
    return out


@pytest.mark.parametrize(("path", "command"), _commands(cli, "syncd"), ids=lambda c: str(c))
def test_every_command_says_its_exit_codes_and_describes_every_option(
    path: str, command: click.Command
) -> None:
    assert "Exit: 0" in (command.help or ""), f"{path}: its help says no exit codes"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{path} {param.opts[0]}: no description"
