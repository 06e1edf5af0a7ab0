"""The keypoint index of a gallery saved beside the store, so that a start maps it
instead of reading and sorting every stored posting again.

One file per gallery, ``keypoints-<gallery>.idx`` in the data folder: .npy arrays one
after the other: a header (int64: magic, format, run count, slot count, posting layout),
each sorted run of postings (uint64, mapped read-only at load, not read), the postings
of each slot (int64), the cont_sign of each slot (unicode, "" for a removed item).

It is written to a temporary name, flushed to disk, then renamed over the old one: a
crash mid-write leaves the previous file (or none), never a torn one. A file that is
missing, unreadable, of another format or not exactly as long as its arrays is not used
(the caller rebuilds from the store). Whether its items are still the store's is the
caller's check (``Galleries`` compares the cont_signs).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from syncd.gallery.keypoints import SLOT_SHIFT, WORD_SHIFT, SavedPostings

logger = logging.getLogger(__name__)

_MAGIC: Final = 0x5359_4E43_4B50_4958  # "SYNCKPIX"
#: bumped whenever the layout of the file or of a posting changes
FORMAT: Final = 1
_TEMPORARY_SUFFIX: Final = ".tmp"


def index_path(data_dir: Path, gallery: str) -> Path:
    """Where the keypoint index of ``gallery`` is saved."""
    return data_dir / f"keypoints-{gallery}.idx"


def save(path: Path, saved: SavedPostings) -> None:
    """Write ``saved`` to ``path`` atomically (temporary file, fsync, rename, fsync of
    the folder). Raises OSError when the disk refuses."""
    temporary = path.with_name(path.name + _TEMPORARY_SUFFIX)
    header = np.array(
        [_MAGIC, FORMAT, len(saved.runs), len(saved.signs), int(WORD_SHIFT), int(SLOT_SHIFT)],
        dtype="<i8",
    )
    try:
        with open(temporary, "wb") as out:
            np.save(out, header, allow_pickle=False)
            for run in saved.runs:
                np.save(out, np.asarray(run, dtype="<u8"), allow_pickle=False)
            np.save(out, np.asarray(saved.posted, dtype="<i8"), allow_pickle=False)
            np.save(out, np.array(saved.signs, dtype=np.str_), allow_pickle=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        # the rename itself must reach the disk before the file is trusted
        os.fsync(folder)
    finally:
        os.close(folder)


def load(path: Path) -> SavedPostings | None:
    """The index saved at ``path``; None (with one log line saying why) if there is
    none or it cannot be used. A temporary file left by a crash mid-write is removed."""
    path.with_name(path.name + _TEMPORARY_SUFFIX).unlink(missing_ok=True)
    if not path.exists():
        return None
    try:
        return _read(path)
    except (OSError, ValueError, EOFError) as exc:
        logger.warning("saved keypoint index %s not used (rebuilt from the store): %s", path.name, exc)
        return None


def _read(path: Path) -> SavedPostings:
    size = path.stat().st_size
    with open(path, "rb") as source:
        header = _array(source)
        expected = [_MAGIC, FORMAT, None, None, int(WORD_SHIFT), int(SLOT_SHIFT)]
        if header.shape != (6,) or any(
            want is not None and int(got) != want for got, want in zip(header, expected, strict=True)
        ):
            raise ValueError("another format")
        run_count, slot_count = int(header[2]), int(header[3])
        runs = []
        for _ in range(run_count):
            offset, length = _skip_array(source, np.dtype("<u8"))
            if offset + 8 * length > size:
                raise ValueError("truncated")
            # mapped, not read: a start touches only the pages its searches need
            runs.append(np.memmap(path, dtype="<u8", mode="r", offset=offset, shape=(length,)))
        posted = _array(source)
        signs = _array(source)
        if source.tell() != size:
            raise ValueError("not as long as its arrays")
    if posted.shape != (slot_count,) or signs.shape != (slot_count,):
        raise ValueError("slot counts disagree")
    return SavedPostings(
        runs=tuple(np.asarray(run).view(np.uint64) for run in runs),
        signs=tuple(str(sign) for sign in signs.tolist()),
        posted=posted.astype(np.int64),
    )


def _array(source: BinaryIO) -> npt.NDArray[np.generic]:
    """The next .npy array of ``source``, read."""
    loaded: npt.NDArray[np.generic] = np.load(source, allow_pickle=False)
    return loaded


def _skip_array(source: BinaryIO, dtype: np.dtype[np.generic]) -> tuple[int, int]:
    """(offset of the data, length) of the next 1-d .npy array of ``dtype``; the
    stream is left after its data."""
    version = np.lib.format.read_magic(source)
    if version == (1, 0):
        shape, fortran, found = np.lib.format.read_array_header_1_0(source)
    else:
        shape, fortran, found = np.lib.format.read_array_header_2_0(source)
    if len(shape) != 1 or fortran or found != dtype:
        raise ValueError("a run is not a 1-d array of postings")
    offset = source.tell()
    source.seek(offset + shape[0] * dtype.itemsize)
    return offset, int(shape[0])
