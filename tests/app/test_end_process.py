"""A one-shot command ends its process at once when it is done (``syncd.cli.end_process``):
the exit status, the output and the exit handlers are those Python's own exit gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def ended(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_status_output_and_exit_handlers_survive() -> None:
    done = ended(
        "import atexit, sys\n"
        "from syncd.cli import end_process\n"
        "atexit.register(lambda: print('exit handler ran'))\n"
        "sys.stdout.write('pending output, not flushed yet; ')\n"
        "end_process(3)\n"
        "print('not reached')\n"
    )
    assert done.returncode == 3
    assert done.stdout == "pending output, not flushed yet; exit handler ran\n"


def test_a_message_is_printed_and_exits_1() -> None:
    done = ended("from syncd.cli import end_process\nend_process('something is wrong')\n")
    assert (done.returncode, done.stderr) == (1, "something is wrong\n")


def test_with_another_thread_running_python_ends_the_process_itself() -> None:
    """The thread is joined as at any exit: it finishes its work."""
    done = ended(
        "import threading\n"
        "from syncd.cli import end_process\n"
        "go = threading.Event()\n"
        "worker = threading.Thread(target=lambda: (go.wait(), print('thread done')))\n"
        "worker.start()\n"
        "end_process(0)\n"
        "print('returned')\n"
        "go.set()\n"
    )
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["returned", "thread done"]


def test_the_real_command_exits_with_its_status_and_says_why(tmp_path: Path) -> None:
    """``syncd status`` on a file that is no ledger: the status ends its process itself,
    with exit status 2 and the line saying what is wrong."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "ledger.db").write_text("not a database\n", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        '[api]\nendpoint = "embedded"\n[ledger]\npath = "./ledger.db"\n'
        '[[library]]\nname = "lib"\nroot = "./lib"\ngallery = "same_hq"\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "status", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "ledger.db" in done.stderr
    assert done.stdout == ""
