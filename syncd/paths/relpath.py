"""The forms of a path relative to a library root: the stored one (bytes; undecodable names
round-trip exactly) and the printable one-line form for logs and messages.
"""

from __future__ import annotations


def encode_relpath(relpath: str) -> bytes:
    """The stored form of a relative path: UTF-8, undecodable bytes restored exactly."""
    return relpath.encode("utf-8", "surrogateescape")


def decode_relpath(stored: bytes) -> str:
    """Inverse of :func:`encode_relpath`."""
    return stored.decode("utf-8", "surrogateescape")


def printable_relpath(relpath: str) -> str:
    """``relpath`` as one printable line: undecodable bytes as ``\\xNN``, controls escaped."""
    text = relpath.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
