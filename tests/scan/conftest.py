"""Fixtures of the scan tests: the corpus of awkward images, and a tree other users can read."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.corpus import Corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The awkward image files, each made once per session on first use."""
    return Corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A short-named directory under the system temp dir that every user may traverse.

    pytest's own tmp_path lives under a private 0700 directory; tests that drop privileges
    or bind Unix sockets (108-byte path limit) need this one instead.
    """
    path = Path(tempfile.mkdtemp(prefix="syncd-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for dirpath, dirnames, _ in os.walk(path):
            for name in dirnames:
                child = os.path.join(dirpath, name)
                if not os.path.islink(child):
                    os.chmod(child, 0o755)
        shutil.rmtree(path)
