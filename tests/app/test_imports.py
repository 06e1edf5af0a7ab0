"""The doors start fast: importing the CLI, the application layer's package, or the walk
a reconcile starts first loads none of the heavy libraries (SQLAlchemy, Pillow, requests,
numpy); each command imports its use case when it runs (docs/architecture.md, Layers)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "PIL", "requests", "numpy")


@pytest.mark.parametrize("module", ["syncd.cli", "syncd.app", "syncd.app.walks"])
def test_importing_loads_no_heavy_library(module: str) -> None:
    probe = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert shown.stdout.strip() == ""


def test_the_status_use_case_does_load_the_ledger() -> None:
    """The probe above sees an import: the status module itself needs SQLAlchemy."""
    probe = "import sys, syncd.app.status; print('sqlalchemy' in sys.modules)"
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert shown.stdout.strip() == "True"
