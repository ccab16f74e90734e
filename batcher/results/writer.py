"""Writes the results file: the input's columns as written, then the result columns, via the one atomic write.

The writer escapes formula cells, masks secrets in the error column and follows the input's separator and
byte-order mark; input/earlier.py undoes the escaping so accepted cells read back with the meaning they had.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

from batcher.errors import OutputError
from batcher.input.columnar import Columns
from batcher.input.earlier import RESULT_COLUMNS
from batcher.input.rows import LoadedInput
from batcher.results.format import (
    LINE_END,
    UTF8_BOM,
    WRITE_FAILED_HINT,
    RowResults,
    as_text,
    escape_column,
    escape_formulas,
    output_format,
)
from batcher.support import redaction
from batcher.support.files import write_atomically

SLICE_ROWS = 1 << 18  # rows converted and written at a time, to bound memory


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
        else [pa.chunked_array([as_text(column)], type=pa.string()) for column in values]
    )
    errors = redacted(as_text(rows.error))

    def slices() -> Iterator[list[pa.Array]]:
        for start in range(0, loaded.row_count, SLICE_ROWS):
            stop = start + SLICE_ROWS
            columns = [escape_column(column.slice(start, SLICE_ROWS).combine_chunks()) for column in columns_in]
            # every column may hold the API's words (a status it read, for one): each is formula-escaped
            columns += [escape_column(as_text(rows.outcome[start:stop]))]
            columns += [escape_column(as_text(rows.previous_status[start:stop]))]
            columns.append(escape_column(as_text(rows.target_status[start:stop])))
            status, attempts, batch = (
                _blank_zero(values[start:stop], None if keep is None else keep[start:stop]) for values, keep in numbers
            )
            # the error may quote a cell, or the server's words
            columns += [status, escape_column(errors.slice(start, SLICE_ROWS)), attempts, batch]
            yield columns

    try:
        _write_csv(path, header, slices(), separator=separator, bom=bom, what="the results")
    except OutputError as exc:
        cause = exc.__cause__
        detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause or exc)
        raise OutputError(f"{path}: cannot be written ({detail}). {WRITE_FAILED_HINT}") from exc


def write_csv(
    path: Path,
    header: Sequence[str],
    columns: Sequence[pa.Array],
    *,
    separator: str = ",",
    bom: bool = False,
    what: str,
) -> None:
    """Write header and text columns (cells as they are: the caller escapes and masks) as CSV, via the one
    atomic write; the same bytes as the results file's (csv.writer's minimal quoting, CRLF line ends).

    Raises:
        OutputError: the file cannot be written.
    """
    count = len(columns[0]) if columns else 0
    slices = ([column.slice(start, SLICE_ROWS) for column in columns] for start in range(0, count, SLICE_ROWS))
    _write_csv(path, header, slices, separator=separator, bom=bom, what=what)


def _write_csv(
    path: Path, header: Sequence[str], slices: Iterable[list[pa.Array]], *, separator: str, bom: bool, what: str
) -> None:
    write_atomically(
        path, lambda handle: write_csv_lines(handle, header, slices, separator=separator, bom=bom), what=what
    )


def write_csv_lines(
    handle: IO[bytes], header: Sequence[str], slices: Iterable[list[pa.Array]], *, separator: str, bom: bool = False
) -> None:
    """The one CSV writer of batcher (results, report --out, export, verify): the header, then each slice of text
    columns, in csv.writer's bytes (minimal quoting, CRLF line ends), cells as they are."""
    writer = _SliceWriter(separator)
    if bom:
        handle.write(UTF8_BOM)
    handle.write(writer.line(header))
    for columns in slices:
        writer.write(handle, columns)


def redacted(errors: pa.Array) -> pa.Array:
    """A text column with every known secret masked; redact runs once per distinct cell."""
    encoded = pc.dictionary_encode(errors)
    messages = [redaction.redact(str(text)) for text in encoded.dictionary.to_pylist()]
    return pa.array(messages, pa.string()).take(encoded.indices)


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
