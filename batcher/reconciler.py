"""Merges input rows and batch results into one outcome per row, and writes the results CSV.

Pure merging plus file writing; no networking.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

from batcher.errors import OutputError
from batcher.loader import FIRST_DATA_ROW, LoadedInput, Strings
from batcher.models import Batch, BatchResult, Outcome

RESULT_COLUMNS = ("outcome", "http_status", "error", "attempts", "batch")
REJECTED_IN_207 = "rejected by the API in a 207 response"
_SLICE_ROWS = 1 << 18  # rows converted and written at a time, to bound memory


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
) -> RowResults:
    """One RowResults covering every input row; rows of batches without a result are pending."""
    n = loaded.row_count
    outcome = np.full(n, Outcome.PENDING.value, dtype=object)
    error = np.full(n, "", dtype=object)
    http_status = np.zeros(n, dtype=np.int64)
    attempts = np.zeros(n, dtype=np.int64)
    batch_of_row = np.zeros(n, dtype=np.int64)

    invalid = loaded.invalid_reason != ""
    outcome[invalid] = Outcome.INVALID.value
    error[invalid] = loaded.invalid_reason[invalid]

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
        if result.error:
            outcome[rows] = Outcome.FAILED.value
            error[rows] = result.error
            continue
        outcome[rows] = Outcome.SUCCEEDED.value
        if result.failed_ids:
            failed = rows[np.isin(loaded.registration_id[rows], list(result.failed_ids))]
            outcome[failed] = Outcome.FAILED.value
            error[failed] = REJECTED_IN_207

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

    The bytes are those of Python's csv.writer (minimal quoting, "\n" line ends), written column-wise by pyarrow.

    Raises:
        OutputError: the file cannot be written.
    """
    text: list[Strings] = [*loaded.values, rows.outcome]
    numbers = (
        (rows.http_status, None),
        (rows.attempts, rows.batch > 0),  # a row that was in a batch shows 0 attempts when it was never sent
        (rows.batch, None),
    )

    def write_rows(handle: IO[bytes]) -> None:
        for start in range(0, loaded.row_count, _SLICE_ROWS):
            stop = start + _SLICE_ROWS
            columns = [pa.array(column[start:stop], type=pa.string()) for column in text]
            status, attempts, batch = (
                _blank_zero(values[start:stop], None if keep is None else keep[start:stop]) for values, keep in numbers
            )
            columns += [status, pa.array(rows.error[start:stop], type=pa.string()), attempts, batch]
            _write_slice(handle, columns)

    _write_atomically(path, _csv_line([*loaded.header, *RESULT_COLUMNS]), write_rows)


def _blank_zero(values: npt.NDArray[np.int64], keep_zero: npt.NDArray[np.bool_] | None) -> pa.Array:
    blank = values == 0 if keep_zero is None else (values == 0) & ~keep_zero
    return pc.if_else(pa.array(blank), "", pc.cast(pa.array(values), pa.string()))


def _csv_line(cells: Sequence[str]) -> bytes:
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(cells)
    return line.getvalue().encode()


def _quoted_characters() -> str:
    """The characters that make csv.writer quote a cell (minimal quoting, "\n" line ends); asked, not assumed."""
    found = ""
    for character in ',"\r\n':
        if _csv_line([f"a{character}b", ""]).startswith(b'"'):
            found += character
    return found


_QUOTED = "[" + re.escape(_quoted_characters()) + "]"
# pyarrow writes a cell unquoted only when it holds none of these; other slices are joined here instead
_STRUCTURAL = (b",", b'"', b"\r", b"\n")


def _write_slice(handle: IO[bytes], columns: list[pa.Array]) -> None:
    if not any(_holds_structural(column) for column in columns):
        table = pa.table({str(position): column for position, column in enumerate(columns)})
        pa_csv.write_csv(table, handle, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
        return
    cells = [_quote(column.cast(pa.large_string())) for column in columns]
    cells[-1] = pc.binary_join_element_wise(cells[-1], _large(""), _large("\n"))
    lines = pc.binary_join_element_wise(*cells, _large(","))
    _, offset_buffer, data_buffer = lines.buffers()
    if data_buffer is None:
        return
    offsets = np.frombuffer(offset_buffer, dtype=np.int64, count=len(lines) + 1, offset=lines.offset * 8)
    handle.write(memoryview(data_buffer)[int(offsets[0]) : int(offsets[-1])])


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _holds_structural(column: pa.Array) -> bool:
    data = column.buffers()[2]
    if data is None:
        return False
    raw = data.to_pybytes()
    return any(raw.find(character) >= 0 for character in _STRUCTURAL)


def _quote(cells: pa.Array) -> pa.Array:
    """csv.writer's minimal quoting: a cell holding a quoted character is quoted, its quotes doubled."""
    needs = pc.match_substring_regex(cells, _QUOTED)
    if not pc.any(needs).as_py():
        return cells
    quote, nothing = pa.scalar('"', cells.type), pa.scalar("", cells.type)
    quoted = pc.binary_join_element_wise(quote, pc.replace_substring(cells, '"', '""'), quote, nothing)
    return pc.if_else(needs, quoted, cells)


def _write_atomically(path: Path, header: bytes, write_rows: Callable[[IO[bytes]], None]) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    temporary: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "wb", dir=directory, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            temporary = handle.name
            handle.write(header)
            write_rows(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise OutputError(
            f"{path}: cannot write the results ({exc.strerror or exc}). Free space or fix permissions."
        ) from exc
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
