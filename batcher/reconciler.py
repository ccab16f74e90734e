"""Merges input rows and batch results into one outcome per row, and writes the results CSV.

Pure merging plus file writing; no networking.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import pandas as pd

from batcher.errors import InputError, OutputError
from batcher.loader import FIRST_DATA_ROW, LoadedInput, Strings, load_input
from batcher.models import RESULT_COLUMNS, Batch, BatchResult, Outcome, RegistrationKey

REJECTED_IN_207 = "rejected by the API in a 207 response"
# A cell starting with one of these is run as a formula by a spreadsheet ("CSV injection");
# a leading single quote makes it plain text. "-5" is escaped too: the rule cannot tell numbers apart.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class RowResults:
    """One outcome per input row, as columns."""

    outcome: Strings
    http_status: npt.NDArray[np.int64]  # 0: no answer
    error: Strings
    attempts: npt.NDArray[np.int64]
    batch: npt.NDArray[np.int64]  # 0: in no batch

    def counts(self) -> dict[Outcome, int]:
        """Rows per outcome, every outcome listed."""
        words, numbers = np.unique(self.outcome.astype(str), return_counts=True)
        found = dict(zip(words.tolist(), numbers.tolist(), strict=True))
        return {outcome: int(found.get(outcome.value, 0)) for outcome in Outcome}


def reconcile(
    loaded: LoadedInput,
    batches: Sequence[Batch],
    results: Iterable[BatchResult],
    *,
    pending_reason: str = "not sent",
    applied_before: npt.NDArray[np.int64] | None = None,
    held_back_reason: str = "not sent",
) -> RowResults:
    """One RowResults covering every input row; rows of batches without a result are pending.

    applied_before holds, per row, the HTTP status of an earlier run that applied it (0: none);
    such rows were not sent again and count as succeeded.
    """
    n = loaded.row_count
    outcome = np.full(n, Outcome.PENDING.value, dtype=object)
    error = np.full(n, held_back_reason, dtype=object)  # valid rows in no batch; the rest is overwritten
    http_status = np.zeros(n, dtype=np.int64)
    attempts = np.zeros(n, dtype=np.int64)
    batch_of_row = np.zeros(n, dtype=np.int64)

    invalid = loaded.invalid_reason != ""
    outcome[invalid] = Outcome.INVALID.value
    error[invalid] = loaded.invalid_reason[invalid]
    if applied_before is not None:
        earlier = applied_before > 0
        outcome[earlier] = Outcome.SUCCEEDED.value
        http_status[earlier] = applied_before[earlier]
        error[earlier] = ""

    by_number = {result.batch: result for result in results}
    for batch in batches:
        rows = np.asarray(batch.rows, dtype=np.int64)
        batch_of_row[rows] = batch.number
        result = by_number.get(batch.number)
        if result is None:
            error[rows] = pending_reason
            continue
        http_status[rows] = result.http_status or 0
        attempts[rows] = result.attempts
        error[rows] = ""
        if result.error:
            outcome[rows] = Outcome.FAILED.value
            error[rows] = result.error
            continue
        outcome[rows] = Outcome.SUCCEEDED.value
        if result.failed_ids:
            failed = rows[np.isin(loaded.registration_id[rows], list(result.failed_ids))]
            outcome[failed] = Outcome.FAILED.value
            error[failed] = REJECTED_IN_207
        if result.id_errors or result.unsent_ids:
            row_of = dict(zip(batch.registration_ids, batch.rows, strict=True))
            for registration_id, (status, reason) in result.id_errors.items():
                row = row_of[registration_id]
                outcome[row] = Outcome.FAILED.value
                error[row] = reason
                http_status[row] = status or 0
            for registration_id in result.unsent_ids:
                row = row_of[registration_id]
                outcome[row] = Outcome.PENDING.value
                error[row] = pending_reason
                http_status[row] = 0

    _fill_duplicates(loaded.duplicate_of, outcome, error, http_status, attempts, batch_of_row)
    return RowResults(outcome, http_status, error, attempts, batch_of_row)


def _fill_duplicates(
    duplicate_of: npt.NDArray[np.int64],
    outcome: Strings,
    error: Strings,
    http_status: npt.NDArray[np.int64],
    attempts: npt.NDArray[np.int64],
    batch_of_row: npt.NDArray[np.int64],
) -> None:
    copies = np.flatnonzero(duplicate_of >= 0)
    if not len(copies):
        return
    firsts = duplicate_of[copies]
    http_status[copies] = http_status[firsts]
    attempts[copies] = attempts[firsts]
    batch_of_row[copies] = batch_of_row[firsts]
    first_rows = (firsts + FIRST_DATA_ROW).astype(str).astype(object)
    error[copies] = "repeats row " + first_rows + " (sent once, with that row; its outcome: " + outcome[firsts] + ")"
    outcome[copies] = Outcome.DUPLICATE.value


def all_succeeded(loaded: LoadedInput, rows: RowResults) -> bool:
    """True when every row succeeded; a duplicate counts as its first copy does."""
    outcome = rows.outcome
    copies = loaded.duplicate_of >= 0
    effective = outcome.copy()
    effective[copies] = outcome[loaded.duplicate_of[copies]]
    return bool(np.all(effective == Outcome.SUCCEEDED.value))


def write_results(path: Path, loaded: LoadedInput, rows: RowResults) -> None:
    """Write the results CSV atomically: the input's columns as written, then the result columns.

    Cells a spreadsheet would run as a formula get a leading single quote (see escape_formulas).

    Raises:
        OutputError: the file cannot be written.
    """
    columns: dict[int, Strings | npt.NDArray[np.int64]] = {
        position: escape_formulas(values) for position, values in enumerate(loaded.values)
    }
    base = len(loaded.values)
    columns[base] = rows.outcome
    columns[base + 1] = _blank_zero(rows.http_status)
    columns[base + 2] = escape_formulas(rows.error)  # it may quote a cell, or the server's words
    columns[base + 3] = _blank_zero(rows.attempts, keep_zero=rows.batch > 0)
    columns[base + 4] = _blank_zero(rows.batch)
    header = [*escape_formulas(np.array(loaded.header, dtype=object)).tolist(), *RESULT_COLUMNS]
    write_csv_atomically(path, pd.DataFrame(columns, copy=False), header)


def escape_formulas(values: Strings) -> Strings:
    """The cells, each one that starts with =, +, -, @, tab or carriage return prefixed with a single quote."""
    starts = pd.Series(values, dtype="str").str.startswith(FORMULA_PREFIXES).to_numpy(dtype=bool)
    if not starts.any():
        return values
    escaped = values.copy()
    escaped[starts] = "'" + escaped[starts]
    return escaped


def _blank_zero(values: npt.NDArray[np.int64], keep_zero: npt.NDArray[np.bool_] | None = None) -> Strings:
    text = values.astype(str).astype(object)
    blank = values == 0 if keep_zero is None else (values == 0) & ~keep_zero
    text[blank] = ""
    return text


def write_text_atomically(path: Path, text: str) -> None:
    """Write text to path via a temporary file, fsync and rename.

    Raises:
        OutputError: the file cannot be written.
    """
    _replace_atomically(path, lambda handle: handle.write(text))


def write_csv_atomically(path: Path, frame: pd.DataFrame, header: Sequence[str]) -> None:
    """Write frame as CSV under header via a temporary file, fsync and rename.

    Raises:
        OutputError: the file cannot be written.
    """
    # CRLF, as RFC 4180 says: Python's csv writer then also quotes cells holding a lone "\r"
    _replace_atomically(
        path, lambda handle: frame.to_csv(handle, index=False, header=list(header), lineterminator="\r\n")
    )


def _replace_atomically(path: Path, write: Callable[[IO[str]], object]) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    temporary: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", newline="", dir=directory, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            temporary = handle.name
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise OutputError(
            f"{path}: cannot be written ({exc.strerror or exc}). Free space or fix permissions; "
            "a run's journal keeps every applied batch, so re-running with --resume loses nothing."
        ) from exc
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def read_succeeded_keys(results_path: Path, *, default_status: str | None) -> dict[RegistrationKey, int]:
    """(event, track, registration, status) of every row an earlier results file marks succeeded.

    Raises:
        InputError: the file cannot be read or is not a results file.
    """
    earlier = load_input(results_path, default_status=default_status)
    if earlier.earlier is None:
        raise InputError(f"{results_path}: has no result columns; is it a batcher results file?")
    outcome, http_status = earlier.earlier[0], earlier.earlier[1]
    done = np.flatnonzero((outcome == Outcome.SUCCEEDED.value) & (earlier.invalid_reason == ""))
    found: dict[RegistrationKey, int] = {}
    for row in done.tolist():
        status_text = str(http_status[row])
        key: RegistrationKey = (
            str(earlier.event_id[row]),
            str(earlier.track_id[row]),
            str(earlier.registration_id[row]),
            str(earlier.registration_status[row]),
        )
        found[key] = int(status_text) if status_text.isdigit() else 200
    return found
