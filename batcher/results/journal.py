"""A run's append-only journal (kept in its folder of the run history), and the lock on a results path.

Every record is one JSON line, fsynced before the run goes on:
- {"read": event, "track_id", "statuses", "missing"}: a track's read, as it ends;
- {"intent": batch, ..., "previous": {id: status}, "rows": [...]}: before a batch's PUT, each registration's
  status from the read made before it (its before-image: undo puts it back);
- {"batch": n, ..., "applied": [...]}: a finished batch, before its rows count as done;
- {"adopted": ..., "previous": {...}}: registrations an earlier attempt of this run sent (its intent) that a
  resumed attempt's read found at their target: this run changed them;
- {"resolved": ...}: the registration and track each row named by email (or without a track) went to.
A crash, a kill or a full disk leaves a record that `--resume` (of this unfinished run only) reads.
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
from batcher.models import Batch, BatchResult, RegistrationKey, RowGroup, TrackRead
from batcher.support import redaction
from batcher.support.files import PRIVATE_MODE, exclusive_lock

Registration = tuple[str, str, str]  # (event, track, registration)

JOURNAL_VERSION = 2


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

    def record_intents(self, batches: Sequence[tuple[Batch, Sequence[str]]]) -> None:
        """Before the batches' PUTs: each registration's status as read before it ("" where not found); one fsync
        for them all.

        Raises:
            JournalError: the journal cannot be written; the run must stop before any PUT.
        """
        self._write(
            *(
                {
                    "intent": batch.number,
                    "event_id": batch.event_id,
                    "track_id": batch.track_id,
                    "registration_status": batch.registration_status,
                    "previous": dict(zip(batch.registration_ids, previous, strict=True)),
                    "rows": list(batch.rows),
                }
                for batch, previous in batches
            )
        )

    def record_adopted(self, group: RowGroup, previous: Sequence[str]) -> None:
        """Registrations an earlier attempt of this run sent that are at their target now: this run's changes.

        Raises:
            JournalError: the journal cannot be written.
        """
        self._write(
            {
                "adopted": group.registration_status,
                "event_id": group.event_id,
                "track_id": group.track_id,
                "registration_status": group.registration_status,
                "previous": dict(zip(group.registration_ids, previous, strict=True)),
                "rows": list(group.rows),
            }
        )

    def record_resolved(self, rows: Sequence[int], registrations: Sequence[Registration]) -> None:
        """The registration each row named by email (or without a track) went to.

        Raises:
            JournalError: the journal cannot be written.
        """
        self._write({"resolved": [[row, *key] for row, key in zip(rows, registrations, strict=True)]})

    def _write(self, *records: dict[str, object]) -> None:
        try:
            for record in records:
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


@dataclass(frozen=True, slots=True)
class Change:
    """A registration a run changed, as its journal says: to target, from previous ("" when nothing was read)."""

    target: str
    previous: str
    row: int  # the input row that named it (-1 when the journal does not say)


def read_changes(path: Path) -> dict[Registration, Change]:
    """Every registration a journal says its run changed, with its before-image.

    A registration is changed when a batch applied it (its previous status: the intent written before that
    batch's PUT) or when a resumed attempt adopted it. A torn last line is ignored.

    Raises:
        UsageError: the file is not a batcher journal.
    """
    intents: dict[tuple[str, str, str, str], tuple[str, int]] = {}
    changes: dict[Registration, Change] = {}
    for record in _records(path):
        kind = (
            "intent"
            if "intent" in record
            else "adopted"
            if "adopted" in record
            else "batch"
            if "batch" in record
            else ""
        )
        if not kind:
            continue
        event_id, track_id, status = (
            str(record["event_id"]),
            str(record["track_id"]),
            str(record["registration_status"]),
        )
        if kind == "batch":
            for registration_id in record.get("applied") or []:
                before, row = intents.get((event_id, track_id, str(registration_id), status), ("", -1))
                changes[(event_id, track_id, str(registration_id))] = Change(status, before, row)
            continue
        rows = list(record.get("rows") or [])
        for index, (registration_id, before) in enumerate((record.get("previous") or {}).items()):
            row = int(rows[index]) if index < len(rows) else -1
            if kind == "intent":
                intents[(event_id, track_id, str(registration_id), status)] = (str(before or ""), row)
            else:
                changes[(event_id, track_id, str(registration_id))] = Change(status, str(before or ""), row)
    return changes


def read_intents(path: Path) -> dict[RegistrationKey, str]:
    """Every registration a journal's run meant to send (it may have been sent), with its before-image."""
    found: dict[RegistrationKey, str] = {}
    for record in _records(path):
        if "intent" in record:
            event_id, track_id = str(record["event_id"]), str(record["track_id"])
            status = str(record["registration_status"])
            for registration_id, before in (record.get("previous") or {}).items():
                found[(event_id, track_id, str(registration_id), status)] = str(before or "")
    return found


@dataclass(frozen=True, slots=True)
class EarlierAttempts:
    """What the earlier attempts of an unfinished run did, as its journal says (what --resume may keep)."""

    changes: dict[Registration, Change]  # applied (or adopted), with the before-image
    intents: dict[RegistrationKey, str]  # meant to be sent (maybe sent before a crash), with the before-image
    applied: dict[RegistrationKey, int]  # applied, with the HTTP status (--no-snapshot skips these)

    def previous_of(self, key: RegistrationKey) -> str | None:
        """The before-image of a registration this run may have set to key's status (None: it did not)."""
        change = self.changes.get(key[:3])
        if change is not None and change.target == key[3]:
            return change.previous
        return self.intents.get(key)


NO_EARLIER_ATTEMPTS = EarlierAttempts({}, {}, {})


def read_attempts(path: Path) -> EarlierAttempts:
    """The earlier attempts of a run from its journal (none when it does not exist).

    Raises:
        UsageError: the file is not a batcher journal.
    """
    if not path.exists():
        return NO_EARLIER_ATTEMPTS
    return EarlierAttempts(read_changes(path), read_intents(path), read_applied(path))


def read_resolved(path: Path) -> dict[int, Registration]:
    """Per row named by email (or without a track): the registration it went to, as the journal says."""
    found: dict[int, Registration] = {}
    for record in _records(path):
        for row, event_id, track_id, registration_id in record.get("resolved") or []:
            found[int(row)] = (str(event_id), str(track_id), str(registration_id))
    return found
