"""The results file: its columns, the one "is this a results file" test, its writer and its reader.

The only module that knows the format. The writer escapes formula cells, masks secrets in the error column and
follows the input's separator and byte-order mark; the reader undoes the escaping so accepted cells read back
with the meaning they had.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

from batcher.errors import InputError, OutputError
from batcher.input.columnar import Columns, Strings, written
from batcher.models import Outcome, RegistrationKey
from batcher.support import redaction
from batcher.support.files import write_atomically

if TYPE_CHECKING:
    import pandas as pd

    from batcher.input.rows import LoadedInput
    from batcher.input.table import InputFormat
    from batcher.plan.reconciler import RowResults

# The columns a results file adds after the input's own; a file whose header ends with them is a results file.
RESULT_COLUMNS = ("outcome", "previous_status", "target_status", "http_status", "error", "attempts", "batch")
# --results-format: auto follows the input; csv is comma-separated UTF-8 without a byte-order mark; excel is
# the input's separator as UTF-8 with a byte-order mark (Excel's own "CSV UTF-8")
RESULTS_FORMATS = ("auto", "csv", "excel")
UTF8_BOM = b"\xef\xbb\xbf"
# A cell starting with one of these is run as a formula by a spreadsheet ("CSV injection");
# a leading single quote makes it plain text. "-5" is escaped too: the rule cannot tell numbers apart.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Escaped: a formula prefix, after any number of single quotes (so that reading can undo exactly one quote)
_ESCAPED_START = "^'*[" + re.escape("".join(FORMULA_PREFIXES)) + "]"
_UNESCAPE = "^'('*[" + re.escape("".join(FORMULA_PREFIXES)) + "])"
# CRLF, as RFC 4180 says: Python's csv writer then also quotes cells holding a lone "\r"
LINE_END = "\r\n"
_SLICE_ROWS = 1 << 18  # rows converted and written at a time, to bound memory
WRITE_FAILED_HINT = (
    "Free space or fix permissions; a run's journal keeps every applied batch, so re-running with --resume "
    "loses nothing."
)


@dataclass(frozen=True, slots=True)
class EarlierResults:
    """An earlier results file's own columns, per row kept, as written (formula escapes undone)."""

    outcome: Strings
    previous_status: Strings  # what the API said before the change; "" when nothing was read
    target_status: Strings  # the status the row was to be set to
    http_status: Strings
    error: Strings
    attempts: Strings
    batch: Strings


@dataclass(frozen=True, slots=True)
class ResultsFile:
    """An existing results file, loaded: the user's columns plus the earlier run's result columns."""

    loaded: LoadedInput
    earlier: EarlierResults

    @property
    def outcome(self) -> Strings:
        return self.earlier.outcome

    @property
    def error(self) -> Strings:
        return self.earlier.error


def is_results_header(header: Sequence[str]) -> bool:
    """The one test: a results file's header ends with RESULT_COLUMNS, after at least one column of the input's."""
    width = len(RESULT_COLUMNS)
    return len(header) > width and tuple(name.strip() for name in header[-width:]) == RESULT_COLUMNS


def not_a_results_file(path: Path) -> str:
    """The one wording of "this is not a results file"."""
    return f"{path}: is not a batcher results file (its last columns are not {', '.join(RESULT_COLUMNS)})"


def split_columns(
    header: list[str], table: list[pa.ChunkedArray]
) -> tuple[list[str], list[pa.ChunkedArray], list[pa.ChunkedArray] | None]:
    """The user's header and columns, and the result columns (None when not a results file), escapes undone."""
    if not is_results_header(header):
        return header, table, None
    user = len(header) - len(RESULT_COLUMNS)
    names = [str(name) for name in unescape(pa.chunked_array([pa.array(header[:user], pa.string())])).to_pylist()]
    return names, [unescape(column) for column in table[:user]], [unescape(column) for column in table[user:]]


def earlier_results(columns: Sequence[pa.ChunkedArray]) -> EarlierResults:
    """The result columns of the rows kept, as Python strings."""
    return EarlierResults(*(written(column) for column in columns))


def unescape(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The cells as they were before escape_formulas: one leading quote less before a formula prefix."""
    if not len(column) or not pc.any(pc.starts_with(column, "'")).as_py():
        return column
    return pc.replace_substring_regex(column, _UNESCAPE, r"\1")


def read_results_file(path: Path, *, default_status: str | None = None) -> ResultsFile:
    """Load a results file written by batcher.

    Raises:
        InputError: unreadable, or not a batcher results file.
    """
    from batcher.input.rows import InputOptions, load_input  # noqa: PLC0415 - the loader splits results files

    # the target of each row is the target_status its run recorded (or default_status, when given)
    loaded = load_input(path, default_status=default_status, options=InputOptions(status_column=None))
    if loaded.earlier is None:
        raise InputError(not_a_results_file(path))
    return ResultsFile(loaded, loaded.earlier)


def succeeded_keys(results: ResultsFile) -> dict[RegistrationKey, int]:
    """(event, track, registration, status) of every valid row the file marks succeeded, with its HTTP status."""
    loaded, earlier = results.loaded, results.earlier
    done = np.flatnonzero((earlier.outcome == Outcome.SUCCEEDED.value) & (loaded.invalid_reason == ""))
    found: dict[RegistrationKey, int] = {}
    for row in done.tolist():
        status_text = str(earlier.http_status[row])
        key: RegistrationKey = (
            str(loaded.event_id[row]),
            str(loaded.track_id[row]),
            str(loaded.registration_id[row]),
            str(loaded.registration_status[row]),
        )
        found[key] = int(status_text) if status_text.isdigit() else 200
    return found


def read_succeeded_keys(results_path: Path, *, default_status: str | None) -> dict[RegistrationKey, int]:
    """succeeded_keys of the results file at results_path.

    Raises:
        InputError: the file cannot be read or is not a results file.
    """
    return succeeded_keys(read_results_file(results_path, default_status=default_status))


def output_format(source: InputFormat, results_format: str = "auto") -> tuple[str, bool]:
    """(separator, byte-order mark) of the results for an input read as source."""
    if results_format not in RESULTS_FORMATS:
        raise ValueError(f"results_format must be one of {', '.join(RESULTS_FORMATS)}, got {results_format!r}")
    if results_format == "csv":
        return ",", False
    if results_format == "excel":
        return source.separator, True
    return source.separator, source.bom or source.workbook or source.encoding != "utf-8"


def write_results(path: Path, loaded: LoadedInput, rows: RowResults, *, results_format: str = "auto") -> None:
    """Write the results CSV atomically: the input's columns as written, then the result columns.

    results_format (see RESULTS_FORMATS) picks the separator and the byte-order mark. Cells a spreadsheet would
    run as a formula get a leading single quote (see escape_formulas), and known secrets in the error column are
    masked. The bytes are those of Python's csv.writer (minimal quoting, CRLF line ends), written column-wise.

    Raises:
        OutputError: the file cannot be written.
    """
    separator, bom = output_format(loaded.source, results_format)
    numbers = (
        (rows.http_status, None),
        (rows.attempts, rows.batch > 0),  # a row that was in a batch shows 0 attempts when it was never sent
        (rows.batch, None),
    )
    header = [*escape_formulas(np.array(loaded.header, dtype=object)).tolist(), *RESULT_COLUMNS]
    values = loaded.values
    # the columns as read, when the loader still holds them so: making Python strings of them would cost more
    # than writing them
    columns_in = (
        [values.arrow(position) for position in range(len(values))]
        if isinstance(values, Columns)
        else [pa.chunked_array([_text(column)], type=pa.string()) for column in values]
    )
    errors = _redacted(_text(rows.error))
    writer = _SliceWriter(separator)

    def write(handle: IO[bytes]) -> None:
        if bom:
            handle.write(UTF8_BOM)
        handle.write(writer.line(header))
        for start in range(0, loaded.row_count, _SLICE_ROWS):
            stop = start + _SLICE_ROWS
            columns = [_escaped(column.slice(start, _SLICE_ROWS).combine_chunks()) for column in columns_in]
            # every column may hold the API's words (a status it read, for one): each is formula-escaped
            columns += [_escaped(_text(rows.outcome[start:stop])), _escaped(_text(rows.previous_status[start:stop]))]
            columns.append(_escaped(_text(rows.target_status[start:stop])))
            status, attempts, batch = (
                _blank_zero(values[start:stop], None if keep is None else keep[start:stop]) for values, keep in numbers
            )
            # the error may quote a cell, or the server's words
            columns += [status, _escaped(errors.slice(start, _SLICE_ROWS)), attempts, batch]
            writer.write(handle, columns)

    try:
        write_atomically(path, write, what="the results")
    except OutputError as exc:
        cause = exc.__cause__
        detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause or exc)
        raise OutputError(f"{path}: cannot be written ({detail}). {WRITE_FAILED_HINT}") from exc


def write_csv_atomically(path: Path, frame: pd.DataFrame, header: Sequence[str]) -> None:
    """Write frame as CSV under header (cells as they are) via the one atomic write.

    Raises:
        OutputError: the file cannot be written.
    """

    def write(handle: IO[bytes]) -> None:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        frame.to_csv(text, index=False, header=list(header), lineterminator=LINE_END)
        text.flush()
        text.detach()  # the bytes handle stays open for the fsync

    write_atomically(path, write, what="the rows")


def escape_formulas(values: Strings) -> Strings:
    """The cells, each one that starts with =, +, -, @, tab or carriage return (after any single quotes)
    prefixed with a single quote."""
    starts = _formula_starts(_text(values))
    if not starts.any():
        return values
    escaped = values.copy()
    escaped[starts] = "'" + escaped[starts]
    return escaped


def _text(values: Strings) -> pa.Array:
    return pa.array(values, type=pa.string())


def _redacted(errors: pa.Array) -> pa.Array:
    """The error column with every known secret masked; redact runs once per distinct message."""
    encoded = pc.dictionary_encode(errors)
    messages = [redaction.redact(str(text)) for text in encoded.dictionary.to_pylist()]
    return pa.array(messages, pa.string()).take(encoded.indices)


def _formula_starts(cells: pa.Array) -> npt.NDArray[np.bool_]:
    """Which cells start with a formula prefix, after any single quotes."""
    if not len(cells):
        return np.zeros(0, dtype=np.bool_)
    return np.asarray(pc.match_substring_regex(cells, _ESCAPED_START).fill_null(False), dtype=np.bool_)


def _escaped(cells: pa.Array) -> pa.Array:
    """escape_formulas on a pyarrow column."""
    if not len(cells) or not pc.any(pc.match_substring_regex(cells, _ESCAPED_START)).as_py():
        return cells
    starts = pc.match_substring_regex(cells, _ESCAPED_START)
    return pc.if_else(starts, pc.binary_join_element_wise("'", cells, ""), cells)


def _blank_zero(values: npt.NDArray[np.int64], keep_zero: npt.NDArray[np.bool_] | None) -> pa.Array:
    blank = values == 0 if keep_zero is None else (values == 0) & ~keep_zero
    return pc.if_else(pa.array(blank), "", pc.cast(pa.array(values), pa.string()))


class _SliceWriter:
    """Rows in csv.writer's bytes for one separator: pyarrow's writer when no cell needs quoting, else joined."""

    def __init__(self, separator: str) -> None:
        self.separator = separator
        # the characters that make csv.writer quote a cell (minimal quoting, CRLF line ends); asked, not assumed
        quoted = "".join(c for c in f'{separator}"\r\n' if self.line([f"a{c}b", ""]).startswith(b'"'))
        self._quoted = "[" + re.escape(quoted) + "]"
        # pyarrow writes a cell unquoted only when it holds none of these
        self._structural = tuple(c.encode() for c in (separator, '"', "\r", "\n"))

    def line(self, cells: Sequence[str]) -> bytes:
        out = io.StringIO()
        csv.writer(out, delimiter=self.separator, lineterminator=LINE_END).writerow(cells)
        return out.getvalue().encode("utf-8")

    def write(self, handle: IO[bytes], columns: list[pa.Array]) -> None:
        if not any(self._holds_structural(column) for column in columns):
            table = pa.table({str(position): column for position, column in enumerate(columns)})
            options = pa_csv.WriteOptions(
                include_header=False, quoting_style="none", eol=LINE_END, delimiter=self.separator
            )
            pa_csv.write_csv(table, handle, options)
            return
        cells = [self._quote(column.cast(pa.large_string())) for column in columns]
        cells[-1] = pc.binary_join_element_wise(cells[-1], _large(""), _large(LINE_END))
        lines = pc.binary_join_element_wise(*cells, _large(self.separator))
        _, offset_buffer, data_buffer = lines.buffers()
        if data_buffer is None:
            return
        offsets = np.frombuffer(offset_buffer, dtype=np.int64, count=len(lines) + 1, offset=lines.offset * 8)
        handle.write(memoryview(data_buffer)[int(offsets[0]) : int(offsets[-1])])

    def _holds_structural(self, column: pa.Array) -> bool:
        data = column.buffers()[2]
        if data is None:
            return False
        raw = data.to_pybytes()
        return any(raw.find(character) >= 0 for character in self._structural)

    def _quote(self, cells: pa.Array) -> pa.Array:
        """csv.writer's minimal quoting: a cell holding a quoted character is quoted, its quotes doubled."""
        needs = pc.match_substring_regex(cells, self._quoted)
        if not pc.any(needs).as_py():
            return cells
        quote, nothing = pa.scalar('"', cells.type), pa.scalar("", cells.type)
        quoted = pc.binary_join_element_wise(quote, pc.replace_substring(cells, '"', '""'), quote, nothing)
        return pc.if_else(needs, quoted, cells)


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())
