"""Reads the input file (CSV text or an .xlsx sheet), matches its headers, validates every row and groups them.

The only module that parses the input file. Per-row data stays in columns: pyarrow reads a regular CSV,
pandas' C parser the rest, and keys.py checks and groups the key columns column-wise.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

from batcher import keys, workbook
from batcher.defaults import DELIMITER_NAMES, FIELDS, REQUIRED_COLUMNS, STATUS_COLUMN
from batcher.errors import InputError, UsageError
from batcher.keys import STATUS_ALIASES, Columns, byte_lengths, written
from batcher.models import KNOWN_STATUSES, RESULT_COLUMNS, Outcome, RowGroup

STATUS_LOOKALIKES = frozenset({"status", "newstatus", "targetstatus"})
# The spreadsheet row of data row i: the header is row 1.
FIRST_DATA_ROW = 2
DELIMITERS = (",", ";", "\t")  # in order of preference when the header splits equally
MAX_FIELD_CHARS = 1 << 20  # 1 MiB: no registrations export holds a cell anywhere near this
SNIFF_CHARS = 1 << 16  # the header, which the separator is read from, lies in the first 64 KiB
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
ZIP_MAGIC = b"PK\x03\x04"
MAX_COLUMNS_LISTED = 20
_SCAN_BYTES = 1 << 24  # a file is scanned for lone carriage returns this much at a time
_CR, _LF = 13, 10
_CONTROL_RE = re.compile(keys.CONTROL_CHARS)

Strings = npt.NDArray[np.object_]


@dataclass(frozen=True, slots=True)
class InputOptions:
    """How to read the input file; the defaults detect what they can."""

    delimiter: str | None = None  # ",", ";" or "\t"; None: the one that splits the header into most fields
    encoding: str | None = None  # a Python codec name; None: UTF-8, with or without a byte-order mark
    sheet: str | None = None  # .xlsx only; None: the first sheet
    columns: tuple[tuple[str, str], ...] = ()  # (field, header) pairs, from --column
    only: frozenset[str] | None = None  # an earlier results file: keep only rows with these outcomes

    def __post_init__(self) -> None:
        if self.delimiter is not None and self.delimiter not in DELIMITERS:
            raise UsageError(f"--delimiter takes a comma, a semicolon or tab (got {self.delimiter!r})")
        if self.encoding is not None:
            _check_encoding(self.encoding)
        fields = [field for field, _ in self.columns]
        for field, header in self.columns:
            if field not in FIELDS:
                raise UsageError(f"--column {field}=...: {field!r} is not one of {', '.join(FIELDS)}")
            if not header.strip():
                raise UsageError(f"--column {field}= needs the header of the column after '='")
            if fields.count(field) > 1:
                raise UsageError(f"--column {field}=... is given more than once")
        headers = [header.strip().casefold() for _, header in self.columns]
        if len(set(headers)) < len(headers):
            raise UsageError("--column maps one header to two fields; each column can hold only one of them")
        outcomes = [outcome.value for outcome in Outcome]
        if self.only is not None and (not self.only or not self.only <= set(outcomes)):
            unknown = ", ".join(sorted(self.only - set(outcomes))) or "nothing"
            raise UsageError(f"--only takes outcomes separated by commas, from {', '.join(outcomes)} (got {unknown})")


DEFAULT_OPTIONS = InputOptions()


@dataclass(frozen=True, slots=True)
class LoadedInput:
    """An input file, validated: original values per column plus the per-row verdict."""

    path: Path
    header: tuple[str, ...]  # as the user wrote it (an earlier run's result columns left out)
    values: Sequence[Strings]  # one array per header column, values exactly as written (made when first used)
    event_id: Strings  # normalized, API form ("" where invalid)
    track_id: Strings
    registration_id: Strings
    registration_status: Strings
    invalid_reason: Strings  # "" for a valid row
    duplicate_of: npt.NDArray[np.int64]  # input row index of the first copy, -1 if none
    groups: tuple[RowGroup, ...]
    notes: tuple[str, ...]  # things worth telling the user, e.g. accepted spellings
    skipped_rows: int = 0  # rows of an earlier results file left out by --only
    # an earlier results file's own result columns (outcome, http_status, error, attempts, batch), per row kept
    earlier: tuple[Strings, ...] | None = None

    @property
    def row_count(self) -> int:
        return len(self.invalid_reason)


def normalize_header(name: str) -> str:
    """Header key: case, surrounding spaces and inner spaces, dashes and underscores ignored."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def load_input(path: Path, *, default_status: str | None, options: InputOptions = DEFAULT_OPTIONS) -> LoadedInput:
    """Read, validate and group an input file (CSV, or .xlsx by its suffix).

    Raises:
        InputError: the file cannot be read or trusted, or a required column is missing.
        UsageError: --status is unknown, or an option does not fit this file.
    """
    default = _normalize_default_status(default_status)
    header, table = _read_table(path, options)
    header, table, skipped_rows, earlier = _select_rows(path, header, table, options.only)
    columns = _match_columns(path, header, options.columns)
    checked = keys.check_rows(
        table[columns["event_id"]],
        table[columns["track_id"]],
        table[columns["registration_id"]],
        table[columns[STATUS_COLUMN]] if STATUS_COLUMN in columns else None,
        default=default,
    )

    notes: list[str] = []
    if checked.aliased:
        notes.append(f'{checked.aliased} row(s) spelled the status "Cancelled"; sent as CANCELED, the API\'s spelling')
    if STATUS_COLUMN not in columns:
        lookalike = next((name for name in header if normalize_header(name) in STATUS_LOOKALIKES), None)
        if lookalike is not None:
            notes.append(
                f'the column "{_printable(lookalike)}" is not read as registration_status (every row takes '
                f"--status); if it holds the status to set, add --column registration_status={lookalike}"
            )

    return LoadedInput(
        path=path,
        header=tuple(header),
        values=Columns(table),
        event_id=checked.event_id,
        track_id=checked.track_id,
        registration_id=checked.registration_id,
        registration_status=checked.registration_status,
        invalid_reason=checked.invalid_reason,
        duplicate_of=checked.duplicate_of,
        groups=checked.groups,
        notes=tuple(notes),
        skipped_rows=skipped_rows,
        earlier=earlier,
    )


def _read_table(path: Path, options: InputOptions) -> tuple[list[str], list[pa.ChunkedArray]]:
    """The header and the data rows' columns, every cell as text; rows with no value at all are dropped."""
    if not path.exists():
        raise InputError(f"{path}: no such file. Check the path, or run 'ls' in that folder.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a CSV file.")
    if workbook.is_workbook(path):
        if options.delimiter is not None or options.encoding is not None:
            raise UsageError(f"{path}: --delimiter and --encoding apply to CSV files, not to .xlsx workbooks")
        rows = workbook.read_sheet(path, sheet=options.sheet)
        raw = pa.table(
            {f"f{position}": pa.array(cells, pa.string()) for position, cells in enumerate(zip(*rows, strict=True))}
        )
    else:
        if options.sheet is not None:
            raise UsageError(f"{path}: --sheet applies to .xlsx workbooks; this file is read as CSV text")
        raw = _parse_csv(path, _read_bytes(path), options)
    raw = _without_blank_rows(path, raw)
    if not raw.num_rows:
        raise InputError(f"{path}: the file is empty; it needs a header row and at least one data row.")
    header = [str(column[0].as_py()) for column in raw.columns]
    header[0] = header[0].removeprefix("\ufeff")
    if raw.num_rows == 1:
        raise InputError(f"{path}: has a header row but no data rows.")
    return header, [column.slice(1) for column in raw.columns]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc


def _parse_csv(path: Path, data: bytes, options: InputOptions) -> pa.Table:
    """The CSV's records as text columns; the encoding and the separator are checked or detected first."""
    codec = _codec(options.encoding)
    if codec == "utf-8":
        nul = data.find(b"\x00")
        if nul >= 0:
            raise _binary_error(path, data, line=data.count(b"\n", 0, nul) + 1)
        data = data.removeprefix(UTF8_BOM)
        head = data[:SNIFF_CHARS].decode("utf-8", errors="replace")
    else:
        if data.startswith(UTF8_BOM):
            raise InputError(
                f"{path}: starts with a UTF-8 byte-order mark, so it is UTF-8, not {options.encoding}; "
                "run again without --encoding."
            )
        text = _decode(path, data, codec).removeprefix("\ufeff")
        nul = text.find("\x00")
        if nul >= 0:
            raise _binary_error(path, data, line=text.count("\n", 0, nul) + 1)
        head = text[:SNIFF_CHARS]
        data = _reencoded(path, text)
    delimiter = options.delimiter or sniff_delimiter(head)
    try:
        return _read_fast(data, delimiter)
    except pa.ArrowException:
        # Anything unusual (rows of uneven length, lines of only spaces, bad UTF-8, an empty file) is read
        # the careful way, which reads such files as it always has and words their errors for the user.
        return _read_careful(path, data, delimiter)


def _read_fast(data: bytes, delimiter: str) -> pa.Table:
    """Every cell exactly as written, as a string, the header as row 0; raises pa.ArrowException if irregular.

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
        read_options=pa_csv.ReadOptions(autogenerate_column_names=True),
        parse_options=pa_csv.ParseOptions(
            delimiter=delimiter, newlines_in_values=bool(quoted), ignore_empty_lines=True
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


def _read_careful(path: Path, data: bytes, delimiter: str) -> pa.Table:
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
    return pa.table(
        {
            f"f{position}": pa.array(raw[name].to_numpy(dtype=object), type=pa.string())
            for position, name in enumerate(raw.columns)
        }
    )


def sniff_delimiter(head: str) -> str:
    """The separator (comma, semicolon or tab) that splits the first record into most fields, quotes respected."""
    best, most = DELIMITERS[0], 0
    for delimiter in DELIMITERS:
        fields = _first_record_width(head, delimiter)
        if fields > most:
            best, most = delimiter, fields
    return best


def _first_record_width(head: str, delimiter: str) -> int:
    try:
        for record in csv.reader(io.StringIO(head, newline=""), delimiter=delimiter):
            # a line of separators alone (",,,", as spreadsheets export an empty row) is blank whatever the separator
            if any(cell.strip(" ,;\t") for cell in record):
                return len(record)
    except csv.Error:
        return 0
    return 0


def _check_encoding(name: str) -> None:
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
        raise InputError(f"{path}: holds characters that are not text ({exc.reason}); check --encoding.") from exc


def _undecodable(path: Path, data: bytes, codec: str) -> InputError:
    """Where the bytes stop being valid in codec, said as a line number, with what to try next."""
    label = "UTF-8" if codec == "utf-8" else codec
    advice = (
        "Find the file's encoding and pass it with --encoding."
        if codecs.lookup(codec).name == "cp1252"
        else "If it comes from Excel on Windows, run again with --encoding cp1252; "
        "or save it from your spreadsheet as 'CSV UTF-8'."
    )
    try:
        data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].decode(codec, errors="replace").count("\n") + 1
        return InputError(f"{path}: line {line} is not valid {label} (byte 0x{data[exc.start]:02x}). {advice}")
    return InputError(f"{path}: is not valid {label}. {advice}")


def _binary_error(path: Path, data: bytes, *, line: int) -> InputError:
    if data.startswith(UTF16_BOMS):
        hint = "It looks like UTF-16 text (Excel's 'Unicode Text'): run again with --encoding utf-16."
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


def _without_blank_rows(path: Path, raw: pa.Table) -> pa.Table:
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
                    f"{path}: row {row + 1}, column {position + 1} holds {int(characters[row]):,} characters, "
                    f"over the limit of 1 MiB ({MAX_FIELD_CHARS:,}); this is not a registrations list."
                )
        total += length
    blank = total == 0
    return raw.filter(pa.array(~blank)) if blank.any() else raw


def _select_rows(
    path: Path, header: list[str], table: list[pa.ChunkedArray], only: frozenset[str] | None
) -> tuple[list[str], list[pa.ChunkedArray], int, tuple[Strings, ...] | None]:
    """An earlier results file loses its result columns and, with --only, the rows of other outcomes.

    Returns the user's header, their columns, how many rows --only skipped, and the earlier result
    columns of the rows kept (None when the file is not a results file).
    """
    width = len(RESULT_COLUMNS)
    if len(header) <= width or tuple(name.strip() for name in header[-width:]) != RESULT_COLUMNS:
        if only is not None:
            raise UsageError(
                f"{path}: --only needs the results file of an earlier run (its last columns are "
                f"{', '.join(RESULT_COLUMNS)}); this file has no such columns."
            )
        return header, table, 0, None
    user_columns = len(header) - width
    earlier = table[user_columns:]
    table = table[:user_columns]
    if only is None:
        return header[:user_columns], table, 0, tuple(written(column) for column in earlier)
    outcome = pc.utf8_lower(pc.utf8_trim_whitespace(earlier[0]))
    keep = pc.is_in(outcome, value_set=pa.array(sorted(only), pa.string()))
    wanted = ",".join(sorted(only))
    if not pc.any(keep).as_py():
        counts = pc.value_counts(outcome).to_pylist()  # in order of first appearance; the sort below keeps it
        counts.sort(key=lambda pair: -int(pair["counts"]))
        found = ", ".join(f"{pair['counts']} {_printable(str(pair['values']), 20) or 'empty'}" for pair in counts[:6])
        raise UsageError(f"{path}: no row has an outcome in --only {wanted}, so there is nothing to send ({found}).")
    kept = [column.filter(keep) for column in table]
    skipped = len(keep) - pc.sum(keep).as_py()
    return header[:user_columns], kept, skipped, tuple(written(column.filter(keep)) for column in earlier)


def _match_columns(path: Path, header: list[str], explicit: tuple[tuple[str, str], ...]) -> dict[str, int]:
    found = {field: _find_header(path, header, field, wanted) for field, wanted in explicit}
    claimed = set(found.values())
    keys = {normalize_header(name): name for name in FIELDS}
    for position, name in enumerate(header):
        key = keys.get(normalize_header(name))
        if key is None or position in claimed or any(field == key for field, _ in explicit):
            continue
        if key in found:
            raise InputError(
                f'{path}: columns "{_printable(header[found[key]])}" and "{_printable(name)}" both match "{key}"; '
                f"rename or remove one of them, or choose one with --column {key}=HEADER."
            )
        found[key] = position
    missing = [name for name in REQUIRED_COLUMNS if name not in found]
    if missing:
        hint = (
            " Only one column was found: check the separator (--delimiter) or the sheet (--sheet)."
            if len(header) == 1
            else ""
        )
        raise InputError(
            f'{path}: no "{missing[0]}" column (found: {_listed(header)}). '
            "Headers match ignoring case, spaces, dashes and underscores; "
            f"or name the column with --column {missing[0]}=HEADER." + hint
        )
    return found


def _find_header(path: Path, header: list[str], field: str, wanted: str) -> int:
    """The position of the column --column names: its exact header, else the one equal ignoring case."""
    name = wanted.strip()
    positions = [position for position, text in enumerate(header) if text.strip() == name]
    if not positions:
        positions = [position for position, text in enumerate(header) if text.strip().casefold() == name.casefold()]
    if not positions:
        raise InputError(f'{path}: --column {field}={wanted}: no column "{name}" (found: {_listed(header)}).')
    if len(positions) > 1:
        raise InputError(f'{path}: --column {field}={wanted}: {len(positions)} columns are named "{name}".')
    return positions[0]


def _listed(header: list[str]) -> str:
    names = ", ".join(_printable(name, 40) for name in header[:MAX_COLUMNS_LISTED])
    more = len(header) - MAX_COLUMNS_LISTED
    return names + (f", and {more} more" if more > 0 else "")


def _printable(text: str, limit: int = 80) -> str:
    """Text safe for a one-line message: control characters shown as U+FFFD, long text cut."""
    text = _CONTROL_RE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _normalize_default_status(default_status: str | None) -> str | None:
    if default_status is None:
        return None
    status = STATUS_ALIASES.get(default_status.strip().upper(), default_status.strip().upper())
    if status not in KNOWN_STATUSES:
        raise UsageError(f"--status {default_status!r} is not a known status; use one of {', '.join(KNOWN_STATUSES)}")
    return status


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "parser error"
