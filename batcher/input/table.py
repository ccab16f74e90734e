"""Reading the input: bytes to a table of text cells (encodings, NUL bytes, byte-order marks, separators, the
pyarrow path, the pandas fallback, workbooks, bounds on size), with each row's spreadsheet row number.

What the cells mean is rows.py's business; this module only makes sure they are read as written.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

from batcher.defaults import DEFAULT_MAX_INPUT_MB, DELIMITER_NAMES
from batcher.errors import InputError, NothingToDo, UsageError
from batcher.input import workbook
from batcher.input.bounds import check_regular_file, read_bounded
from batcher.input.columnar import byte_lengths
from batcher.support import hints
from batcher.support.csvtext import DELIMITERS, sniff_delimiter

MAX_FIELD_CHARS = workbook.MAX_CELL_CHARS  # 1 MiB: no registrations export holds a cell anywhere near this
MAX_COLUMNS = workbook.MAX_COLUMNS  # a header past this is refused before any row is parsed
HEADER_SCAN_BYTES = 1 << 22  # the header's width is read from at most this much of the first line
SNIFF_CHARS = 1 << 16  # the header, which the separator is read from, lies in the first 64 KiB
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
ZIP_MAGIC = b"PK\x03\x04"
SAVE_AS_UTF8 = "Save it from your spreadsheet as 'CSV UTF-8'."  # the hint of a command without --encoding
# PyArrow's reader uses threads only for files this large: small inputs never start its thread pool
THREADS_FROM_BYTES = 1 << 24
_SCAN_BYTES = 1 << 24  # a file is scanned for lone carriage returns this much at a time
_CR, _LF = 13, 10
# Excel's first line naming the separator ("sep=;"); Excel does not show it as a row
_SEP_LINE = re.compile(rb'"?sep=(\t|\\t|[^\r\n"])"?(\r\n|\n|\r)')
# a line of only spaces and tabs, whatever ends the lines (\n, \r\n, or a lone \r, as the fast reader counts them)
_BLANK_LINE = re.compile(rb"(?:^|\n|\r(?!\n))[ \t]*(?:\r\n|\r|\n)")


@dataclass(frozen=True, slots=True)
class InputFormat:
    """How the input file was written, so that the results can be written the same way."""

    separator: str  # ",", ";" or "\t" (",": a workbook)
    encoding: str  # the codec the text was read with, "utf-8" for UTF-8; "" for a workbook
    bom: bool  # the text began with a byte-order mark
    workbook: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    """The header and the data rows' columns, every cell as text; rows with no value at all are left out."""

    header: list[str]
    columns: list[pa.ChunkedArray]
    row_number: npt.NDArray[np.int64]  # per data row, its row in a spreadsheet (1-based, blank rows counted)
    source: InputFormat


def read_table(
    path: Path,
    *,
    delimiter: str | None,
    encoding: str | None,
    sheet: str | None,
    max_input_mb: float = DEFAULT_MAX_INPUT_MB,
) -> Table:
    """Read the file (.xlsx by its suffix, else CSV text); see Table.

    Raises:
        InputError: the file cannot be read or trusted, is empty, is not a regular file, or is larger than
            max_input_mb MiB.
        UsageError: an option does not fit this kind of file, or the file's sep= line disagrees with delimiter.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file. Check the path, or run 'ls' in that folder.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a CSV file.")
    limit = check_regular_file(path, max_input_mb)
    if workbook.is_workbook(path):
        if delimiter is not None or encoding is not None:
            raise UsageError(f"{path}: --delimiter and --encoding apply to CSV files, not to .xlsx workbooks")
        rows = workbook.read_sheet(path, sheet=sheet)
        raw = pa.table(
            {f"f{position}": pa.array(cells, pa.string()) for position, cells in enumerate(zip(*rows, strict=True))}
        )
        source = InputFormat(",", "", bom=False, workbook=True)
    else:
        if sheet is not None:
            raise UsageError(f"{path}: --sheet applies to .xlsx workbooks; this file is read as CSV text")
        raw, source = _parse_csv(path, read_bounded(path, limit, max_input_mb), delimiter, encoding)
    numbers = raw.column("row_number").to_numpy() if "row_number" in raw.column_names else None
    if numbers is not None:
        raw = raw.drop_columns(["row_number"])
    row_number = np.asarray(numbers if numbers is not None else np.arange(1, raw.num_rows + 1), dtype=np.int64)
    raw, row_number = _without_blank_rows(path, raw, row_number)
    if not raw.num_rows:
        raise InputError(f"{path}: the file is empty; it needs a header row and at least one data row.")
    header = [str(column[0].as_py()) for column in raw.columns]
    header[0] = header[0].removeprefix("\ufeff")
    if raw.num_rows == 1:
        raise NothingToDo(f"{path}: has a header row but no data rows: nothing to do")
    return Table(header, [column.slice(1) for column in raw.columns], row_number[1:], source)


def _parse_csv(path: Path, data: bytes, delimiter: str | None, encoding: str | None) -> tuple[pa.Table, InputFormat]:
    """The CSV's records as text columns; the encoding and the separator are checked or detected first."""
    codec = _codec(encoding)
    bom = data.startswith(UTF8_BOM)
    if codec == "utf-8":
        nul = data.find(b"\x00")
        if nul >= 0:
            raise _binary_error(path, data, line=data.count(b"\n", 0, nul) + 1)
        data = data.removeprefix(UTF8_BOM)
    else:
        if bom:
            raise InputError(
                f"{path}: starts with a UTF-8 byte-order mark, so it is UTF-8, not {encoding}; "
                "run again without --encoding."
            )
        text = _decode(path, data, codec)
        bom = text.startswith("\ufeff")
        text = text.removeprefix("\ufeff")
        nul = text.find("\x00")
        if nul >= 0:
            raise _binary_error(path, data, line=text.count("\n", 0, nul) + 1)
        data = _reencoded(path, text)
    data, named = _without_sep_line(path, data, delimiter)
    delimiter = delimiter or named or sniff_delimiter(data[:SNIFF_CHARS].decode("utf-8", errors="replace"))
    _check_width(path, data, delimiter)
    source = InputFormat(delimiter, codec, bom)
    try:
        return read_fast(data, delimiter), source
    except pa.ArrowException:
        # Anything unusual (rows of uneven length, lines of only spaces, bad UTF-8, an empty file) is read
        # the careful way, which reads such files as it always has and words their errors for the user.
        return read_careful(path, data, delimiter), source


def _without_sep_line(path: Path, data: bytes, delimiter: str | None) -> tuple[bytes, str | None]:
    """The data without Excel's "sep=X" first line, and the separator it names (None: no such line)."""
    found = _SEP_LINE.match(data)
    if found is None:
        return data, None
    named = found.group(1).decode("utf-8", errors="replace").replace("\\t", "\t")
    if named not in DELIMITERS:
        raise InputError(
            f"{path}: the first line (sep={named!a}) names a separator batcher does not read; "
            "use a comma, a semicolon or tab."
        )
    if delimiter is not None and delimiter != named:
        raise UsageError(
            f"{path}: the first line says the separator is a {DELIMITER_NAMES[named]} (sep=), but --delimiter "
            f"gives a {DELIMITER_NAMES[delimiter]}; drop --delimiter or make it agree."
        )
    return data[found.end() :], named


def _check_width(path: Path, data: bytes, delimiter: str) -> None:
    """Refuse a header of more than MAX_COLUMNS fields, read from the first line only (up to a byte bound)."""
    end = data.find(b"\n", 0, HEADER_SCAN_BYTES)
    first = data[: end if end >= 0 else HEADER_SCAN_BYTES]
    fields = first.count(delimiter.encode()) + 1
    if fields > MAX_COLUMNS:
        shown = f"{fields:,}" if end >= 0 or len(first) < HEADER_SCAN_BYTES else f"over {fields:,}"
        raise InputError(
            f"{path}: the header has {shown} {DELIMITER_NAMES[delimiter]}-separated columns, over the limit of "
            f"{MAX_COLUMNS:,}; this is not a registrations list."
        )


def read_fast(data: bytes, delimiter: str) -> pa.Table:
    """Every cell exactly as written, as a string, the header as row 0, blank lines as empty rows (so that rows
    keep their numbers); raises pa.ArrowException if irregular.

    pyarrow's parser reads a regular file as pandas' C parser does, several times faster and in less memory.
    """
    if b"\r" in data and _has_blank_line_ending_in_lone_cr(data):
        # after such a line, pandas' parser drops the next row's first (empty) field; pyarrow keeps it
        raise pa.ArrowInvalid("a blank line ends in a lone carriage return")
    header_end = data.find(b"\n")
    # reading values that may span lines takes pyarrow twice as long: only a quoted value can
    quoted = header_end < 0 or data.count(b'"', 0, header_end) % 2 or data.find(b'"', header_end) >= 0
    table = pa_csv.read_csv(
        pa.BufferReader(data),
        read_options=pa_csv.ReadOptions(autogenerate_column_names=True, use_threads=len(data) >= THREADS_FROM_BYTES),
        parse_options=pa_csv.ParseOptions(
            delimiter=delimiter, newlines_in_values=bool(quoted), ignore_empty_lines=False
        ),
        convert_options=pa_csv.ConvertOptions(
            default_column_type=pa.string(), strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    if table.num_columns < 2:  # pandas skips a line of spaces in a one-column file; pyarrow reads it as a value
        raise pa.ArrowInvalid("one column")
    if not _ends_outside_quotes(data, table, delimiter):
        raise pa.ArrowInvalid("the file ends inside a quoted value")
    return table


def _has_blank_line_ending_in_lone_cr(data: bytes) -> bool:
    """True when a line holds nothing but a carriage return not followed by a line feed."""
    view = np.frombuffer(data, dtype=np.uint8)
    for start in range(0, len(view), _SCAN_BYTES):
        stop = min(start + _SCAN_BYTES, len(view))
        here = view[start:stop]
        before = view[start - 1 : stop - 1] if start else np.concatenate(([_LF], view[: stop - 1]))
        after = view[start + 1 : stop + 1] if stop < len(view) else np.concatenate((view[start + 1 : stop], [0]))
        if np.any((here == _CR) & ((before == _LF) | (before == _CR)) & (after != _LF)):
            return True
    return False


def _ends_outside_quotes(data: bytes, table: pa.Table, delimiter: str) -> bool:
    """False when the file may end inside a quoted value, which pyarrow accepts and pandas' parser rejects.

    Only the last value of the last row can be affected (an earlier one would leave the row short of columns):
    the file must end with it, quoted and closed, or unquoted right after a separator or line break.
    """
    if not table.num_rows:
        return True
    last = str(table.column(table.num_columns - 1)[table.num_rows - 1].as_py()).encode()
    quoted = b'"' + last.replace(b'"', b'""') + b'"'
    tail = data[-(len(quoted) + 64) :].rstrip(b"\r\n")
    if tail.endswith(quoted):
        return True
    before = tail[: len(tail) - len(last)]
    separators = (delimiter.encode(), b"\n", b"\r")
    return tail.endswith(last) and (not before or before[-1:] in separators) and b'"' not in last[:1]


def read_careful(path: Path, data: bytes, delimiter: str) -> pa.Table:
    """The table as pandas' C parser reads it: short rows padded, lines of only spaces skipped."""
    import pandas as pd  # noqa: PLC0415 - only files pyarrow refuses pay for importing pandas

    try:
        raw = pd.read_csv(
            io.BytesIO(data),
            sep=delimiter,
            dtype=str,
            header=None,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8",
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: the file is empty; it needs a header row and at least one data row.") from exc
    except UnicodeDecodeError as exc:
        raise _undecodable(path, data, "utf-8") from exc
    except pd.errors.ParserError as exc:
        raise _unparsable(path, str(exc), delimiter) from exc
    columns = {
        f"f{position}": pa.array(raw[name].to_numpy(dtype=object), type=pa.string())
        for position, name in enumerate(raw.columns)
    }
    columns["row_number"] = pa.array(_record_numbers(data, delimiter, len(raw)))
    return pa.table(columns)


def _record_numbers(data: bytes, delimiter: str, rows: int) -> npt.NDArray[np.int64]:
    """The spreadsheet row of each record pandas kept, counting the blank lines it skipped."""
    plain = np.arange(1, rows + 1, dtype=np.int64)
    if not _BLANK_LINE.search(data):
        return plain
    text = data.decode("utf-8", errors="replace")
    try:
        records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        kept = [
            number
            for number, record in enumerate(records, start=1)
            if record and not (len(record) == 1 and not record[0].strip(" \t"))
        ]
    except csv.Error:
        return plain
    return np.asarray(kept, dtype=np.int64) if len(kept) == rows else plain


def check_encoding(name: str) -> None:
    """Raises UsageError when Python knows no text encoding of that name."""
    try:
        "\n".encode(name)
    except (LookupError, UnicodeError):
        raise UsageError(
            f"--encoding {name!r} is not a text encoding Python knows; try utf-8, cp1252 or latin-1"
        ) from None


def _codec(encoding: str | None) -> str:
    """The codec to decode with; "utf-8" (byte-order mark tolerated) for any spelling of UTF-8."""
    if encoding is None or codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return "utf-8"
    return encoding


def _decode(path: Path, data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise _undecodable(path, data, codec) from exc
    except UnicodeError as exc:
        raise InputError(f"{path}: cannot be read as {codec} ({exc}).") from exc


def _reencoded(path: Path, text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{path}: holds characters that are not text ({exc.reason})"
            + hints.offer("--encoding", "; check --encoding.", "; s" + SAVE_AS_UTF8[1:])
        ) from exc


def _undecodable(path: Path, data: bytes, codec: str) -> InputError:
    """Where the bytes stop being valid in codec, said as a line number, with what to try next."""
    label = "UTF-8" if codec == "utf-8" else codec
    advice = (
        hints.offer("--encoding", "Find the file's encoding and pass it with --encoding.", SAVE_AS_UTF8)
        if codecs.lookup(codec).name == "cp1252"
        else hints.offer(
            "--encoding",
            "If it comes from Excel on Windows, run again with --encoding cp1252; or save "
            "it from your spreadsheet as 'CSV UTF-8'.",
            SAVE_AS_UTF8,
        )
    )
    try:
        data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].decode(codec, errors="replace").count("\n") + 1
        return InputError(f"{path}: line {line} is not valid {label} (byte 0x{data[exc.start]:02x}). {advice}")
    return InputError(f"{path}: is not valid {label}. {advice}")


def _binary_error(path: Path, data: bytes, *, line: int) -> InputError:
    if data.startswith(UTF16_BOMS):
        hint = "It looks like UTF-16 text (Excel's 'Unicode Text'): " + hints.offer(
            "--encoding", "run again with --encoding utf-16.", "s" + SAVE_AS_UTF8[1:]
        )
    elif data.startswith(ZIP_MAGIC):
        hint = "It is a zip archive; an Excel workbook must keep its .xlsx suffix."
    else:
        hint = "batcher reads CSV text (comma, semicolon or tab separated) and .xlsx workbooks."
    return InputError(f"{path}: does not look like a CSV/text file: it holds NUL bytes (first on line {line}). {hint}")


def _unparsable(path: Path, message: str, delimiter: str) -> InputError:
    detail = _first_line(message)
    width = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", detail)
    if width:
        expected, line, saw = width.groups()
        return InputError(
            f"{path}: line {line} has {saw} fields but the header has {expected} "
            f"({DELIMITER_NAMES[delimiter]}-separated). Quote values that hold the separator, "
            "or pass --delimiter if the file uses another one."
        )
    quote = re.search(r"EOF inside string starting at row (\d+)", detail)
    if quote:
        line = int(quote.group(1)) + 1
        return InputError(f'{path}: the quoted field that opens near line {line} never closes; check its quotes (").')
    return InputError(f"{path}: not a readable CSV file ({detail}).")


def _without_blank_rows(
    path: Path, raw: pa.Table, row_number: npt.NDArray[np.int64]
) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    """Rows that hold at least one value (",,," is a blank line too); refuses a field over 1 MiB."""
    total = np.zeros(raw.num_rows, dtype=np.int64)
    for position, column in enumerate(raw.columns):
        length = byte_lengths(column)
        if length.max(initial=0) > MAX_FIELD_CHARS:  # a character takes at least one byte: count them only here
            characters = np.asarray(pc.utf8_length(column).to_numpy(), dtype=np.int64)
            over = characters > MAX_FIELD_CHARS
            if over.any():
                row = int(np.argmax(over))
                raise InputError(
                    f"{path}: row {int(row_number[row])}, column {position + 1} holds {int(characters[row]):,} "
                    f"characters, over the limit of 1 MiB ({MAX_FIELD_CHARS:,}); this is not a registrations list."
                )
        total += length
    blank = total == 0
    if not blank.any():
        return raw, row_number
    return raw.filter(pa.array(~blank)), row_number[~blank]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "parser error"
