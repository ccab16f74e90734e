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
from typing import IO, TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

from batcher.errors import InputError, OutputError
from batcher.keys import Columns
from batcher.loader import FIRST_DATA_ROW, LoadedInput, Strings, load_input
from batcher.models import RESULT_COLUMNS, Batch, BatchResult, Outcome, RegistrationKey

if TYPE_CHECKING:
    import pandas as pd

REJECTED_IN_207 = "rejected by the API in a 207 response"
# A cell starting with one of these is run as a formula by a spreadsheet ("CSV injection");
# a leading single quote makes it plain text. "-5" is escaped too: the rule cannot tell numbers apart.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_BYTES = np.frombuffer("".join(FORMULA_PREFIXES).encode("ascii"), dtype=np.uint8)
# CRLF, as RFC 4180 says: Python's csv writer then also quotes cells holding a lone "\r"
LINE_END = "\r\n"
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

    Cells a spreadsheet would run as a formula get a leading single quote (see escape_formulas). The bytes are
    those of Python's csv.writer (minimal quoting, CRLF line ends), written column-wise by pyarrow.

    Raises:
        OutputError: the file cannot be written.
    """
    numbers = (
        (rows.http_status, None),
        (rows.attempts, rows.batch > 0),  # a row that was in a batch shows 0 attempts when it was never sent
        (rows.batch, None),
    )

    header = [*escape_formulas(np.array(loaded.header, dtype=object)).tolist(), *RESULT_COLUMNS]
    values = loaded.values
    # the columns as read, when the loader still holds them so: making Python strings of them would cost more
    # than writing them
    written = (
        [values.arrow(position) for position in range(len(values))]
        if isinstance(values, Columns)
        else [pa.chunked_array([_text(column)], type=pa.string()) for column in values]
    )

    def write(handle: IO[bytes]) -> None:
        handle.write(_csv_line(header))
        for start in range(0, loaded.row_count, _SLICE_ROWS):
            stop = start + _SLICE_ROWS
            columns = [_escaped(column.slice(start, _SLICE_ROWS).combine_chunks()) for column in written]
            columns.append(_text(rows.outcome[start:stop]))
            status, attempts, batch = (
                _blank_zero(values[start:stop], None if keep is None else keep[start:stop]) for values, keep in numbers
            )
            # the error may quote a cell, or the server's words
            columns += [status, _escaped(_text(rows.error[start:stop])), attempts, batch]
            _write_slice(handle, columns)

    _replace_atomically(path, write)


def escape_formulas(values: Strings) -> Strings:
    """The cells, each one that starts with =, +, -, @, tab or carriage return prefixed with a single quote."""
    starts = _formula_starts(_text(values))
    if not starts.any():
        return values
    escaped = values.copy()
    escaped[starts] = "'" + escaped[starts]
    return escaped


def _text(values: Strings) -> pa.Array:
    return pa.array(values, type=pa.string())


def _formula_starts(cells: pa.Array) -> npt.NDArray[np.bool_]:
    """Which cells start with a formula prefix, read from the first byte of each (the prefixes are ASCII)."""
    _, offset_buffer, data_buffer = cells.buffers()
    if data_buffer is None or not len(cells):
        return np.zeros(len(cells), dtype=np.bool_)
    offsets = np.frombuffer(offset_buffer, dtype=np.int32, count=len(cells) + 1, offset=cells.offset * 4)
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    if not len(data):
        return np.zeros(len(cells), dtype=np.bool_)
    first = data[np.minimum(offsets[:-1], len(data) - 1)]
    return (offsets[1:] > offsets[:-1]) & np.isin(first, _FORMULA_BYTES)


def _escaped(cells: pa.Array) -> pa.Array:
    """escape_formulas on a pyarrow column."""
    starts = _formula_starts(cells)
    if not starts.any():
        return cells
    return pc.if_else(pa.array(starts), pc.binary_join_element_wise("'", cells, ""), cells)


def _blank_zero(values: npt.NDArray[np.int64], keep_zero: npt.NDArray[np.bool_] | None) -> pa.Array:
    blank = values == 0 if keep_zero is None else (values == 0) & ~keep_zero
    return pc.if_else(pa.array(blank), "", pc.cast(pa.array(values), pa.string()))


def _csv_line(cells: Sequence[str]) -> bytes:
    line = io.StringIO()
    csv.writer(line, lineterminator=LINE_END).writerow(cells)
    return line.getvalue().encode("utf-8")


def _quoted_characters() -> str:
    """The characters that make csv.writer quote a cell (minimal quoting, CRLF line ends); asked, not assumed."""
    return "".join(character for character in ',"\r\n' if _csv_line([f"a{character}b", ""]).startswith(b'"'))


_QUOTED = "[" + re.escape(_quoted_characters()) + "]"
# pyarrow writes a cell unquoted only when it holds none of these; other slices are joined here instead
_STRUCTURAL = (b",", b'"', b"\r", b"\n")


def _write_slice(handle: IO[bytes], columns: list[pa.Array]) -> None:
    if not any(_holds_structural(column) for column in columns):
        table = pa.table({str(position): column for position, column in enumerate(columns)})
        options = pa_csv.WriteOptions(include_header=False, quoting_style="none", eol=LINE_END)
        pa_csv.write_csv(table, handle, options)
        return
    cells = [_quote(column.cast(pa.large_string())) for column in columns]
    cells[-1] = pc.binary_join_element_wise(cells[-1], _large(""), _large(LINE_END))
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


def write_text_atomically(path: Path, text: str) -> None:
    """Write text to path via a temporary file, fsync and rename.

    Raises:
        OutputError: the file cannot be written.
    """
    _replace_atomically(path, lambda handle: handle.write(text.encode("utf-8")))


def write_csv_atomically(path: Path, frame: pd.DataFrame, header: Sequence[str]) -> None:
    """Write frame as CSV under header via a temporary file, fsync and rename.

    Raises:
        OutputError: the file cannot be written.
    """

    def write(handle: IO[bytes]) -> None:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        frame.to_csv(text, index=False, header=list(header), lineterminator=LINE_END)
        text.flush()
        text.detach()  # the bytes handle stays open for the fsync

    _replace_atomically(path, write)


def _replace_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    temporary: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "wb", dir=directory, prefix=f".{path.name}.", suffix=".tmp", delete=False
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
