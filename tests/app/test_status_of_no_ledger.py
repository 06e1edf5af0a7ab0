"""A status on a file that is no ledger says so in one line and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_real_command_exits_with_its_status_and_says_why(tmp_path: Path) -> None:
    """``syncd status`` on a file that is no ledger: exit status 2 and the line saying
    what is wrong, no traceback."""
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
    assert "Traceback" not in done.stderr
