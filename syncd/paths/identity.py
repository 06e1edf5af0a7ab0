"""Who a file is and whether it changed: the file signature (size, mtime_ns, inode) that says a
file is unchanged (docs/rules.md, Unchanged files cost nothing), and the identity (dev, inode,
size, mtime_ns) a file moved on one filesystem keeps.
"""

from __future__ import annotations

from typing import Final

_MASK64: Final = (1 << 64) - 1


def file_signature(size: int, mtime_ns: int, inode: int) -> int:
    """One int that changes when size (bytes), mtime_ns or inode does.

    The scan compares it with what the ledger stored: equal means the file is unchanged
    and is not read again. Size and inode are unsigned 64-bit.
    """
    return (mtime_ns << 128) | ((size & _MASK64) << 64) | (inode & _MASK64)


#: (dev, inode, size, mtime_ns): who a file is, wherever it is now
FileIdentity = tuple[int, int, int, int]


def file_identity(dev: int, inode: int, size: int, mtime_ns: int) -> FileIdentity:
    """A file's identity: a file moved on one filesystem keeps it, so the scan
    knows its content without reading it again. Dev and inode as unsigned 64-bit."""
    return (dev & _MASK64, inode & _MASK64, size, mtime_ns)
