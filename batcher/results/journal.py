"""The append-only record of finished batches beside the results file, and the lock on that file.

Each finished batch is written and fsynced before its rows count as done, so a crash, a kill or a
full disk leaves a record that `--resume` reads to skip every registration already applied. Each track's
read (the before-image) is written as it ends, so `--resume` does not read it again.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from batcher.errors import JournalError, UsageError
from batcher.models import Batch, BatchResult, Record, RegistrationKey, TrackRead
from batcher.support import redaction
from batcher.support.files import PRIVATE_MODE, exclusive_lock

JOURNAL_VERSION = 1


def journal_path(results_path: Path) -> Path:
    return results_path.with_name(results_path.name + ".journal")


def lock_path(results_path: Path) -> Path:
    return results_path.with_name(results_path.name + ".lock")


@contextmanager
def results_lock(results_path: Path) -> Iterator[None]:
    """Hold the lock on the results path for the run, and remove the lock file at the end.

    The file is unlinked while its flock is held. A run that opened it before the unlink then holds a lock on
    a file no longer at the path, so every locker checks, once it holds the flock, that the path still names
    the file it locked, and starts again if not.

    Raises:
        UsageError: another run holds it.
    """
    path = lock_path(results_path)
    busy = (
        f"another batcher run is writing {results_path} (it holds {path}); "
        "wait for it to finish, or give this run another --results path"
    )
    while True:
        with exclusive_lock(path, wait=False, busy_message=busy) as descriptor:
            if not _still_at(path, descriptor):
                continue  # an earlier holder removed it after this run opened it
            try:
                yield
            finally:
                path.unlink(missing_ok=True)
            return


def _still_at(path: Path, descriptor: int) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


class Journal:
    """Appends one JSON line per finished batch, fsynced."""

    def __init__(self, path: Path, *, append: bool) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        try:
            # created private (0600): it names the run's registrations
            self._handle: IO[str] = os.fdopen(os.open(path, flags, PRIVATE_MODE), "a", encoding="utf-8")
        except OSError as exc:
            raise JournalError(f"{path}: cannot write the journal ({exc.strerror or exc})") from exc
        if not append or path.stat().st_size == 0:
            self._write({"journal": JOURNAL_VERSION})

    def record(self, batch: Batch, result: BatchResult) -> None:
        """Write the registrations this batch applied.

        Raises:
            JournalError: the journal cannot be written (full disk); the run must stop.
        """
        lost = result.failed_ids | result.unsent_ids | frozenset(result.id_errors)
        applied = [] if result.error else [rid for rid in batch.registration_ids if rid not in lost]
        self._write(
            {
                "batch": batch.number,
                "event_id": batch.event_id,
                "track_id": batch.track_id,
                "registration_status": batch.registration_status,
                "http_status": result.http_status,
                "attempts": result.attempts,
                "applied": applied,
            }
        )

    def record_read(self, read: TrackRead, wanted: Sequence[str]) -> None:
        """Write the before-image of one track: the status read of each id asked about, and those not found.

        A read that failed is not written: --resume reads that track again.

        Raises:
            JournalError: the journal cannot be written; the run must stop.
        """
        if read.failure:
            return
        statuses = {rid: read.found[rid].registration_status for rid in wanted if rid in read.found}
        missing = [rid for rid in wanted if rid not in read.found]
        self._write({"read": read.event_id, "track_id": read.track_id, "statuses": statuses, "missing": missing})

    def _write(self, record: dict[str, object]) -> None:
        try:
            self._handle.write(redaction.redact(json.dumps(record, separators=(",", ":"))) + "\n")
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise JournalError(
                f"{self.path}: cannot write the journal ({exc.strerror or exc}); free space, then re-run with --resume"
            ) from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):  # every record was fsynced as it was written
            self._handle.close()


@dataclass(frozen=True, slots=True)
class BeforeImage:
    """One track's read as a journal recorded it: the reads' result, and every id it answered for."""

    read: TrackRead
    covered: frozenset[str]  # ids asked about: found (in read.found) or known not to exist


def read_before_image(path: Path) -> dict[tuple[str, str], BeforeImage]:
    """Every track read a journal records, the latest per (event, track); a torn last line is ignored.

    Raises:
        UsageError: the file is not a batcher journal.
    """
    images: dict[tuple[str, str], BeforeImage] = {}
    for record in _records(path):
        if "read" not in record:
            continue
        statuses = record.get("statuses") or {}
        missing = record.get("missing") or []
        event_id, track_id = str(record["read"]), str(record["track_id"])
        found = {str(rid): Record(str(rid), str(status)) for rid, status in statuses.items()}
        read = TrackRead(event_id, track_id, found, requests=0)
        images[(event_id, track_id)] = BeforeImage(read, frozenset(found) | frozenset(map(str, missing)))
    return images


def _records(path: Path) -> list[dict[str, Any]]:
    """The journal's records; a torn last line is left out."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the journal ({exc})") from exc
    found: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):
                break
            raise UsageError(f"{path}: line {number} is not a journal record; is this a batcher journal?") from None
        if isinstance(record, dict):
            found.append(record)
    return found


def read_applied(path: Path) -> dict[RegistrationKey, int]:
    """Every (event, track, registration, status) a journal says was applied, with the HTTP status.

    A torn last line (the process died while writing it) is ignored: its batch is sent again.

    Raises:
        UsageError: the file is not a batcher journal.
    """
    applied: dict[RegistrationKey, int] = {}
    for record in _records(path):
        if "applied" not in record:
            continue
        status = int(record.get("http_status") or 0)
        for registration_id in record["applied"]:
            key = (record["event_id"], record["track_id"], registration_id, record["registration_status"])
            applied[key] = status
    return applied
