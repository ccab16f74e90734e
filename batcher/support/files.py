"""The one atomic write (temporary file, fsync, rename, fsync of the folder) and the one advisory lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from batcher.errors import OutputError, UsageError

PRIVATE_MODE = 0o600


class SameFile(UsageError):
    """Two paths of one command name the same file: writing one would destroy the other (nothing is written)."""


def is_same_file(one: Path, other: Path) -> bool:
    """True when the two paths name one file: the same path, through a symbolic link, or a hard link."""
    if one.resolve() == other.resolve():
        return True
    try:
        return os.path.samefile(one, other)
    except OSError:  # one of them does not exist yet: then only the resolved paths could tell
        return False


def check_distinct(named: Sequence[tuple[str, Path | None]]) -> None:
    """Refuse, before anything is read or sent, two paths (given as (option, path)) that are the same file.

    Raises:
        SameFile: two of them are the same file.
    """
    present = [(name, path) for name, path in named if path is not None]
    for index, (name, path) in enumerate(present):
        for other_name, other in present[index + 1 :]:
            if is_same_file(path, other):
                raise SameFile(
                    f"{name} {str(path)!r} and {other_name} {str(other)!r} are the same file: writing one would "
                    "destroy the other. Give each its own path; nothing was read or sent."
                )


def why_unwritable(path: Path, *, example: str = "run.results.csv") -> str:
    """Why path is not a file path in a folder that can be written; "" when it is (checked before any work)."""
    if path.name in ("", ".", "..") or path.is_dir():
        return f"is a folder, not a file path; name a file, e.g. {example}"
    folder = path.parent
    if not folder.is_dir():
        return f"is in the folder {str(folder)!r}, which does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"is in the folder {str(folder)!r}, which this user cannot write to"
    if path.exists() and not os.access(path, os.W_OK):
        return "exists and this user cannot write to it"
    return ""


def write_atomically(
    path: Path,
    write: Callable[[IO[bytes]], object],
    *,
    mode: int = PRIVATE_MODE,
    what: str = "the file",
) -> None:
    """Write path through a temporary file beside it: fsync, rename over path, fsync the folder.

    A reader sees either the old file or the whole new one, never a part.

    Raises:
        OutputError: the file cannot be written (full disk, no permission, a folder in the way).
    """
    folder = path.parent if str(path.parent) else Path(".")
    temporary: str | None = None
    try:
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        temporary = None
        fsync_folder(folder)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write {what} ({exc.strerror or exc})") from exc
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str, *, mode: int = PRIVATE_MODE, what: str = "the file") -> None:
    """write_atomically for a UTF-8 text.

    Raises:
        OutputError: the file cannot be written.
    """
    write_atomically(path, lambda handle: handle.write(text.encode("utf-8")), mode=mode, what=what)


def fsync_folder(folder: Path) -> None:
    """Make a rename inside folder durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def exclusive_lock(
    path: Path, *, wait: bool, busy_message: str = "", unusable: Callable[[OSError], UsageError] | None = None
) -> Iterator[int]:
    """Hold an exclusive flock on path (created with mode 0600) for the block; yields the descriptor.

    The one file lock of batcher: the results path's and the daily quota ledger's.

    Raises:
        UsageError: the lock file cannot be created (unusable words it, if given), or (with wait=False) another
            process holds it.
    """
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
    except OSError as exc:
        if unusable is not None:
            raise unusable(exc) from exc
        raise UsageError(f"{path}: cannot create the lock file ({exc.strerror or exc})") from exc
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(busy_message or f"another process holds {path}") from None
        yield descriptor
    finally:
        with contextlib.suppress(OSError):
            os.close(descriptor)


@contextmanager
def locked(descriptor: int, *, shared: bool = False) -> Iterator[None]:
    """Hold a flock on a descriptor kept open by its owner (the pace record), waiting for it; released after."""
    fcntl.flock(descriptor, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)


def try_lock(path: Path) -> int | None:
    """Take an exclusive flock on path (created with mode 0600) if no one holds it: its descriptor, else None.

    For a caller that must not block its event loop; release_lock gives it back.

    Raises:
        UsageError: the lock file cannot be created.
    """
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
    except OSError as exc:
        raise UsageError(f"{path}: cannot create the lock file ({exc.strerror or exc})") from exc
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def release_lock(descriptor: int) -> None:
    """Give back a lock try_lock took."""
    with contextlib.suppress(OSError):
        os.close(descriptor)
