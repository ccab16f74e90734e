"""Merges input rows and batch results into one outcome per row (RowResults). Pure: no files, no network.

The results file that shows them is results/writer.py's; RowResults itself is results/format.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from batcher.input.columnar import Strings
from batcher.input.rows import LoadedInput
from batcher.models import Batch, BatchResult, Outcome, RowGroup
from batcher.results.format import RowResults

REJECTED_IN_207 = "rejected by the API in a 207 response"


def reconcile(
    loaded: LoadedInput,
    batches: Sequence[Batch],
    results: Iterable[BatchResult],
    *,
    pending_reason: str = "not sent",
    planned: Sequence[RowGroup] = (),
    applied_before: npt.NDArray[np.int64] | None = None,
    held_back_reason: str = "not sent",
    previous_status: Strings | None = None,
    decided: tuple[Strings, Strings] | None = None,
) -> RowResults:
    """One RowResults covering every input row; rows of batches without a result are pending.

    applied_before holds, per row, the HTTP status of an earlier run that applied it (0: none);
    such rows were not sent again and count as succeeded. Rows the input carried over from an earlier results
    file keep that file's outcome (succeeded), HTTP status, attempts and batch.

    planned holds the rows the run meant to send: pending (pending_reason) unless a batch's answer or a decision
    says otherwise, even where the run stopped before they were batched; the other valid rows were held back
    (held_back_reason).

    previous_status is what the reads found before the change (None: nothing was read). decided holds, per row,
    an outcome and its reason settled before sending (unchanged, skipped, failed); "" where the row was not.
    """
    n = loaded.row_count
    outcome = np.full(n, Outcome.PENDING.value, dtype=object)
    error = np.full(n, held_back_reason, dtype=object)  # valid rows not planned; the rest is overwritten
    for group in planned:
        error[np.asarray(group.rows, dtype=np.int64)] = pending_reason
    http_status = np.zeros(n, dtype=np.int64)
    attempts = np.zeros(n, dtype=np.int64)
    batch_of_row = np.zeros(n, dtype=np.int64)

    invalid = loaded.invalid_reason != ""
    outcome[invalid] = Outcome.INVALID.value
    error[invalid] = loaded.invalid_reason[invalid]
    previous = np.full(n, "", dtype=object) if previous_status is None else previous_status.copy()
    target = np.where(invalid, "", loaded.registration_status).astype(object)
    merged = RowResults(outcome, http_status, error, attempts, batch_of_row, previous, target)  # filled in below
    _carry_over(loaded, merged)
    if applied_before is not None:
        earlier = applied_before > 0
        outcome[earlier] = Outcome.SUCCEEDED.value
        http_status[earlier] = applied_before[earlier]
        error[earlier] = ""
    if decided is not None:
        settled = decided[0] != ""
        outcome[settled] = decided[0][settled]
        error[settled] = decided[1][settled]

    _apply_batches(loaded, batches, results, merged, pending_reason)
    _fill_duplicates(loaded, merged)
    return merged


def _apply_batches(
    loaded: LoadedInput,
    batches: Sequence[Batch],
    results: Iterable[BatchResult],
    merged: RowResults,
    pending_reason: str,
) -> None:
    """Each batch's answer onto its rows; a batch without a result leaves its rows pending."""
    outcome, http_status, error, attempts, batch_of_row = (
        merged.outcome,
        merged.http_status,
        merged.error,
        merged.attempts,
        merged.batch,
    )
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


def _carry_over(loaded: LoadedInput, rows: RowResults) -> None:
    """Rows carried over from an earlier results file keep what it says about them."""
    carried = np.flatnonzero(loaded.carried_over)
    if not len(carried) or loaded.earlier is None:
        return
    rows.outcome[carried] = Outcome.SUCCEEDED.value
    rows.error[carried] = ""
    rows.http_status[carried] = _numbers(loaded.earlier.http_status[carried], default=200)
    rows.attempts[carried] = _numbers(loaded.earlier.attempts[carried], default=0)
    rows.batch[carried] = _numbers(loaded.earlier.batch[carried], default=0)
    rows.previous_status[carried] = loaded.earlier.previous_status[carried]
    rows.target_status[carried] = loaded.earlier.target_status[carried]


def _numbers(cells: Strings, *, default: int) -> npt.NDArray[np.int64]:
    """Whole numbers as written in a results file; default where a cell holds none."""
    text = [str(cell).strip() for cell in cells.tolist()]
    return np.array([int(cell) if cell.isdigit() else default for cell in text], dtype=np.int64)


def _fill_duplicates(loaded: LoadedInput, rows: RowResults) -> None:
    copies = np.flatnonzero(loaded.duplicate_of >= 0)
    if not len(copies):
        return
    firsts = loaded.duplicate_of[copies]
    for column in (rows.http_status, rows.attempts, rows.batch):
        column[copies] = column[firsts]
    first_rows = loaded.row_number[firsts].astype(str).astype(object)
    said = "repeats row " + first_rows + " (sent once, with that row; its outcome: " + rows.outcome[firsts] + ")"
    rows.error[copies] = said
    rows.outcome[copies] = Outcome.DUPLICATE.value


def all_succeeded(loaded: LoadedInput, rows: RowResults) -> bool:
    """True when every row succeeded; a duplicate counts as its first copy does."""
    outcome = rows.outcome
    copies = loaded.duplicate_of >= 0
    effective = outcome.copy()
    effective[copies] = outcome[loaded.duplicate_of[copies]]
    return bool(np.all(effective == Outcome.SUCCEEDED.value))
