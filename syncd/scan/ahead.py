"""Walking library roots in a child process while the command is still starting up.

A no-change ``syncd reconcile`` of 100k files spends about as long importing the ledger's
database layer and loading its index as walking the tree. ``start_walks`` forks,
before those imports, one child that walks the libraries in turn and streams each one's
``FileBatch``es, skips and mount points through a pipe of its own; the scan reads them
(``WalkAhead.take``) instead of walking, so on two cores the walk costs almost no wall time.

The child only walks: it prints and logs nothing, never returns into the caller's code
(``os._exit``), keeps what the pipe cannot take yet in memory (compact: about 60 bytes a
file), and ends when its parent closes the pipes. A child that breaks off surfaces as
``WalkFailed``, one line naming the root. Where forking is unsafe or impossible (no
``os.fork``, or the process already runs threads, as the service and test runners do) no
child is started and each library is walked in-process, as ``take`` then returns None.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import marshal
import os
import select
import signal
import struct
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, NoReturn

from syncd.config import Config, LibraryConfig, WatchConfig
from syncd.paths.filters import WalkFilter
from syncd.paths.relpath import printable_relpath
from syncd.scan.walk import FileBatch, MountPoint, RootUnavailable, SkippedEntry, walk_batches

__all__ = ["WalkAhead", "WalkFailed", "start_walks"]

_log = logging.getLogger(__name__)

# the stream of one library: messages, each a 4-byte length and a marshal'd tuple
_FILES: Final = 0  # (_FILES, keys, signatures, devs): a FileBatch
_SKIPPED: Final = 1  # (_SKIPPED, relpath, reason, unreadable): a SkippedEntry
_UNAVAILABLE: Final = 2  # (_UNAVAILABLE, reason): RootUnavailable; the last message
_FAILED: Final = 3  # (_FAILED, what): the walk failed unexpectedly; the last message
_END: Final = 4  # (_END,): the walk is complete; the last message
_MOUNT: Final = 5  # (_MOUNT, relpath, dev): a MountPoint
_HEADER: Final = struct.Struct("<I")
#: bytes of a pipe's kernel buffer asked for (Linux grants up to fs.pipe-max-size, 1 MiB)
_PIPE_BYTES: Final = 1 << 20


class WalkFailed(RootUnavailable):
    """The walk in the child process broke off; ``reason`` says how (nothing is deleted)."""


@dataclass
class _Stream:
    """The walk of one library as the child streams it."""

    library: LibraryConfig
    ignore: tuple[str, ...]
    reader: BinaryIO


class WalkAhead:
    """The walks ``start_walks`` started: ``take`` each library's once, ``close`` at the end."""

    def __init__(self, pid: int | None = None, streams: Sequence[_Stream] = ()) -> None:
        self._pid = pid
        self._streams = {stream.library.name: stream for stream in streams}
        self._readers = [stream.reader for stream in streams]
        self._ending: str | None = None

    @property
    def started(self) -> bool:
        """Whether a child process walks (False: every library is walked in-process)."""
        return self._pid is not None

    @property
    def pid(self) -> int | None:
        """The walking child's process id, until it is reaped."""
        return self._pid

    def take(
        self, library: LibraryConfig, watch: WatchConfig
    ) -> Iterator[FileBatch | SkippedEntry | MountPoint] | None:
        """The walk of ``library`` streamed by the child, as ``walk_batches`` would yield it;
        None when no walk of it under these settings was started (walk it in-process then).

        Like ``walk_batches``, raises ``RootUnavailable`` at once when the root cannot be
        walked; the stream raises ``WalkFailed`` if the child breaks off.
        """
        stream = self._streams.pop(library.name, None)
        if stream is None:
            return None
        if stream.library != library or stream.ignore != tuple(watch.ignore):
            stream.reader.close()  # the child walks by other settings: not this walk
            return None
        try:
            first = _read_message(stream.reader)
        except _Broken as exc:
            stream.reader.close()
            raise WalkFailed(
                f"{_shown(stream)}: the walk's stream was {exc} ({self._end()})"
            ) from None
        if first is None:
            stream.reader.close()  # the child ended before this library: walk it here
            return None
        if first[0] == _UNAVAILABLE:
            stream.reader.close()
            raise RootUnavailable(str(first[1]))
        return self._messages(stream, first)

    def _messages(
        self, stream: _Stream, message: tuple[Any, ...]
    ) -> Iterator[FileBatch | SkippedEntry | MountPoint]:
        """The batches, skips and mount points of ``stream``, starting with ``message``
        (already read)."""
        try:
            while True:
                kind = message[0]
                if kind == _FILES:
                    yield FileBatch(message[1], message[2], message[3])
                elif kind == _SKIPPED:
                    yield SkippedEntry(message[1], message[2], message[3])
                elif kind == _MOUNT:
                    yield MountPoint(message[1], message[2])
                elif kind == _END:
                    return
                elif kind == _UNAVAILABLE:
                    raise RootUnavailable(str(message[1]))
                else:
                    raise WalkFailed(f"{_shown(stream)}: the walk failed: {message[1]}")
                try:
                    next_message = _read_message(stream.reader)
                except _Broken as exc:
                    raise WalkFailed(
                        f"{_shown(stream)}: the walk's stream was {exc} ({self._end()})"
                    ) from None
                if next_message is None:
                    raise WalkFailed(f"{_shown(stream)}: the walk broke off ({self._end()})")
                message = next_message
        finally:
            stream.reader.close()

    def _end(self) -> str:
        """End and reap the child once a stream broke off; how it ended."""
        if self._ending is None and self._pid is not None:
            self._ending = _describe(_reap(self._pid))
            self._pid = None
        return self._ending or "the walking process is gone"

    def close(self) -> None:
        """Close the streams and end and reap the child (it may still walk a library nobody
        asked for). Safe to call more than once."""
        for reader in self._readers:
            reader.close()
        self._streams.clear()
        if self._pid is not None:
            _reap(self._pid)
            self._pid = None

    def __enter__(self) -> WalkAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _reap(pid: int) -> int:
    """Kill the child ``pid`` (nothing happens to one that already ended) and reap it: its
    wait status."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:  # reaped already (SIGCHLD ignored): nothing left to wait for
        return 0


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"the walking process was killed by signal {os.WTERMSIG(status)}"
    return f"the walking process exited with status {os.WEXITSTATUS(status)}"


def _shown(stream: _Stream) -> str:
    return f"library root {printable_relpath(os.fspath(stream.library.root))}"


class _Broken(Exception):
    """A stream was cut inside a message, or holds something that is not one."""


def _read_message(reader: BinaryIO) -> tuple[Any, ...] | None:
    """The next message of a stream; None at its end (the child is gone). Raises _Broken."""
    header = reader.read(_HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise _Broken("cut inside a message")
    (size,) = _HEADER.unpack(header)
    payload = reader.read(size)
    if len(payload) < size:
        raise _Broken("cut inside a message")
    try:
        message = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        raise _Broken("garbled") from None
    if not isinstance(message, tuple) or not message:
        raise _Broken("garbled")
    return message


def start_walks(config: Config, names: Sequence[str] = ()) -> WalkAhead:
    """Start walking the libraries named (all when none) in a child process, in config
    order. Call it before the heavy imports, and ``close`` the result when done.

    Starts nothing (every library is then walked in-process) when this process cannot
    fork safely: no ``os.fork``, threads already running, or fork failing; nor when a
    library's globs do not compile (the scan then says which).
    """
    libraries = [lib for lib in config.libraries if not names or lib.name in names]
    if not libraries or not hasattr(os, "fork") or threading.active_count() > 1:
        return WalkAhead()
    try:  # made before the fork: the child compiles no glob, and the scan that makes the
        # same filters again in this process finds their regexes in ``re``'s cache
        filters = [WalkFilter.for_library(lib, config.watch) for lib in libraries]
    except ValueError:  # a bad glob (a config made in code): the scan says which, in-process
        return WalkAhead()
    pipes: list[tuple[int, int]] = []
    try:
        for _ in libraries:
            pipes.append(os.pipe())
        _grow_pipes([write for _, write in pipes])
        pid = os.fork()
    except OSError:
        for read, write in pipes:
            os.close(read)
            os.close(write)
        return WalkAhead()
    if pid == 0:  # the child: walk, write, exit; never back into the caller's code
        for read, _ in pipes:
            os.close(read)
        _child_main(
            [
                (lib, flt, write)
                for lib, flt, (_, write) in zip(libraries, filters, pipes, strict=True)
            ]
        )
    _log.debug("walking %d libraries in child process %d", len(libraries), pid)
    streams = []
    for lib, (read, write) in zip(libraries, pipes, strict=True):
        os.close(write)
        reader = open(read, "rb", buffering=_PIPE_BYTES)  # noqa: SIM115 -- closed by WalkAhead
        streams.append(_Stream(lib, tuple(config.watch.ignore), reader))
    return WalkAhead(pid, streams)


def _grow_pipes(fds: Sequence[int]) -> None:
    """Ask for bigger pipe buffers (fewer switches between the processes); best effort."""
    setsize: int | None = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if setsize is None:
        return
    for fd in fds:
        try:
            fcntl.fcntl(fd, setsize, _PIPE_BYTES)
        except OSError:
            return  # over the system's limit: the default buffer works too


# -- the child ------------------------------------------------------------------------------


class _Outbox:
    """The messages for one pipe: written as far as the pipe takes them without waiting,
    the rest kept until the parent reads."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.frames: deque[memoryview] = deque()
        #: the parent closed this stream (it does not want the rest)
        self.closed = False
        os.set_blocking(fd, False)

    def put(self, message: tuple[Any, ...]) -> None:
        """Queue ``message`` and write what the pipe takes now."""
        if self.closed:
            return
        payload = marshal.dumps(message)
        self.frames.append(memoryview(_HEADER.pack(len(payload)) + payload))
        self.pump()

    def pump(self) -> bool:
        """Write what the pipe takes now; whether anything is left to write."""
        frames = self.frames
        while frames:
            try:
                written = os.write(self.fd, frames[0])
            except BlockingIOError:
                return True
            except OSError:  # a broken pipe: the parent closed this stream
                self.closed = True
                frames.clear()
                return False
            if written == len(frames[0]):
                frames.popleft()
            else:
                frames[0] = frames[0][written:]
        return False


def _child_main(jobs: list[tuple[LibraryConfig, WalkFilter, int]]) -> NoReturn:
    """Walk each library into its pipe, wait until the parent has read everything, exit."""
    status = 0
    try:
        # Ctrl-C goes to the whole process group: the child just ends, the parent reports
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        outboxes = [_Outbox(fd) for _, _, fd in jobs]
        for (library, flt, _), out in zip(jobs, outboxes, strict=True):
            _walk_into(library, flt, out)
        while waiting := [out.fd for out in outboxes if out.pump()]:
            poll = select.poll()
            for fd in waiting:
                poll.register(fd, select.POLLOUT)
            poll.poll()
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _walk_into(library: LibraryConfig, flt: WalkFilter, out: _Outbox) -> None:
    """Stream the walk of ``library`` (under the filter ``flt``) into ``out``, ending with
    its last message."""
    try:
        walk = walk_batches(library.root, flt, library.follow_symlinks)
        for item in walk:
            if out.closed:
                walk.close()
                return
            if type(item) is FileBatch:
                out.put((_FILES, item.keys, item.signatures, item.devs))
            elif type(item) is MountPoint:
                out.put((_MOUNT, item.relpath, item.dev))
            else:
                assert isinstance(item, SkippedEntry)
                out.put((_SKIPPED, item.relpath, item.reason, item.unreadable))
        out.put((_END,))
    except RootUnavailable as exc:
        out.put((_UNAVAILABLE, exc.reason))
    except Exception as exc:  # a one-line reason for the parent; the child goes on
        out.put((_FAILED, printable_relpath(f"{type(exc).__name__}: {exc}")))
