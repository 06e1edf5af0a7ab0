"""Content hashes: right digests, errors as results, bounded memory, no hang on odd files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.scan.hashing import hash_file, hash_files, open_file


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5])
def test_hash_is_the_sha256_of_the_bytes_at_any_chunk_boundary(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f.jpg"
    path.write_bytes(data)
    assert hash_file(path, chunk=4096) == hashlib.sha256(data).hexdigest()
    assert hash_file(path) == hashlib.sha256(data).hexdigest()


def test_each_file_gets_its_result_and_errors_do_not_stop_the_rest(tmp_path: Path) -> None:
    paths = {}
    for i in range(30):
        paths[f"k{i}"] = tmp_path / f"{i}.jpg"
        paths[f"k{i}"].write_bytes(bytes([i]) * (1000 * i))
    paths["missing"] = tmp_path / "missing.jpg"
    paths["dir"] = tmp_path / "adir"
    paths["dir"].mkdir()
    paths["fifo"] = tmp_path / "pipe.jpg"
    os.mkfifo(paths["fifo"])  # opening it for reading would block without O_NONBLOCK

    results = dict(hash_files(paths.items(), workers=3))
    assert set(results) == set(paths)
    for i in range(30):
        assert results[f"k{i}"] == hashlib.sha256(bytes([i]) * (1000 * i)).hexdigest()
    assert isinstance(results["missing"], FileNotFoundError)
    assert isinstance(results["dir"], OSError)
    assert isinstance(results["fifo"], OSError)
    assert "not a regular file" in str(results["fifo"])


def test_the_input_is_consumed_lazily_with_a_bounded_number_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"abc" * 1000)
    workers = 3
    consumed = 0

    def source() -> Iterator[tuple[int, Path]]:
        nonlocal consumed
        for i in range(2000):
            consumed += 1
            yield i, path

    seen = 0
    for key, digest in hash_files(source(), workers=workers):
        assert digest == hashlib.sha256(b"abc" * 1000).hexdigest(), key
        # what was taken from the input but not yet answered is at most 2 * workers
        assert consumed - seen <= 2 * workers
        seen += 1
    assert seen == consumed == 2000


def test_stopping_early_does_not_hang_or_read_the_whole_input(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x" * 100_000)
    taken = 0

    def source() -> Iterator[tuple[int, Path]]:
        nonlocal taken
        for i in range(100_000):
            taken += 1
            yield i, path

    results = hash_files(source(), workers=2)
    next(results)
    results.close()  # type: ignore[attr-defined]
    assert taken <= 5


def test_zero_workers_is_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        list(hash_files([], workers=0))


def test_open_file_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OSError, match="not a regular file"):
        open_file(tmp_path / "pipe")
    with pytest.raises(OSError, match="a directory"):
        open_file(tmp_path)
    (tmp_path / "f").write_bytes(b"abc")
    with open_file(tmp_path / "f") as f:
        assert f.read() == b"abc"
