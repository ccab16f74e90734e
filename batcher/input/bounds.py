"""The bounds on what the loader reads: a regular file only, of at most --max-input-mb MiB (docs/limits.md)."""

from __future__ import annotations

import stat
from pathlib import Path

from batcher.errors import InputError

MIB = 1 << 20


def check_regular_file(path: Path, max_input_mb: float) -> int:
    """The most bytes path may hold; refuses what is not a regular file (a device, a FIFO, a socket: reading one
    can block forever or never end) and a file past max_input_mb MiB, before a byte of it is read.

    Raises:
        InputError: the file is refused.
    """
    try:
        status = path.stat()  # follows a symbolic link: what counts is what it points to
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if not stat.S_ISREG(status.st_mode):
        raise InputError(
            f"{path}: is not a regular file (a device, a FIFO or a socket); batcher reads CSV or .xlsx files. "
            "Save the data to a file first."
        )
    limit = int(max_input_mb * MIB)
    if status.st_size > limit:
        raise InputError(_too_large(path, status.st_size, max_input_mb))
    return limit


def _too_large(path: Path, size: int, max_input_mb: float) -> str:
    return (
        f"{path}: is larger than {max_input_mb:g} MiB ({size / MIB:,.1f} MiB), the bound on what batcher reads; "
        "if it really is the input, raise it with --max-input-mb."
    )


def read_bounded(path: Path, limit: int, max_input_mb: float) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)  # a file that grew since it was checked is still read only this far
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if len(data) > limit:
        raise InputError(_too_large(path, len(data), max_input_mb))
    return data
