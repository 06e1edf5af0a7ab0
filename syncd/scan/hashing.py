"""Content hashes of library files (SHA-256, hex), one file or many on a small thread pool.

Reading and hashing both release the GIL, so a few threads keep a disk (or a network
share) busy. Files are opened with ``open_file``, which refuses anything but a regular
file (a FIFO put where an image was must not hang a worker) and opens paths longer than
``PATH_MAX`` one directory at a time.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Final, TypeVar

__all__ = ["hash_file", "hash_files", "open_file"]

K = TypeVar("K")

_READ_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
_DIR_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY


def _open_long(path: str) -> int:
    """Open a path too long for one ``open`` call by walking it a component at a time."""
    *dirs, last = path.split("/")
    dir_fd = os.open("/" if path.startswith("/") else ".", _DIR_FLAGS)
    try:
        for comp in dirs:
            if comp:
                next_fd = os.open(comp, _DIR_FLAGS, dir_fd=dir_fd)
                os.close(dir_fd)
                dir_fd = next_fd
        return os.open(last, _READ_FLAGS, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def open_file(path: str | os.PathLike[str]) -> io.FileIO:
    """Open a regular file for reading (unbuffered); ``OSError`` if it is anything else.

    Opening does not block on a FIFO (``O_NONBLOCK``, cleared again for the regular file),
    and paths longer than ``PATH_MAX`` are opened relative to each parent directory.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, _READ_FLAGS)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        fd = _open_long(name)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise OSError(errno.EINVAL, f"{kind}", name)
        os.set_blocking(fd, True)
        return io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def hash_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of the file's bytes as 64 lowercase hex digits, read ``chunk`` bytes at a time.

    Raises ``OSError`` when the file cannot be opened or read.
    """
    digest = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open_file(path) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def hash_files(
    paths: Iterable[tuple[K, str | os.PathLike[str]]], workers: int = 4
) -> Iterator[tuple[K, str | Exception]]:
    """Hash many files on ``workers`` threads; yield ``(key, hex digest)`` as each completes.

    ``paths`` is consumed lazily and at most ``2 * workers`` files are in flight, so memory
    does not grow with the input. An ``OSError`` for one file (vanished, unreadable, not a
    regular file) becomes that file's result; any other exception ends the iteration.
    Results come in completion order, not input order. Closing the iterator early cancels
    what has not started and waits for the hashes under way.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    source = iter(paths)
    limit = 2 * workers
    inflight: dict[Future[str], K] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="syncd-hash") as pool:
        try:
            exhausted = False
            while True:
                while not exhausted and len(inflight) < limit:
                    try:
                        key, path = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    inflight[pool.submit(hash_file, path)] = key
                if not inflight:
                    return
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
                    key = inflight.pop(fut)
                    try:
                        result: str | Exception = fut.result()
                    except OSError as exc:
                        result = exc
                    yield key, result
        finally:
            for fut in inflight:
                fut.cancel()
