"""Row-making: from the input table to rows (header matching, the row rules, an earlier run's results, notes).

load_input is the entry point: it reads the table (table.py), matches the headers, hands the key columns
to the row rules (rules.py) and returns a LoadedInput.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from batcher.defaults import DEFAULT_MAX_INPUT_MB, EMAIL_COLUMN, FIELDS, STATUS_COLUMN
from batcher.errors import InputError, UnclearColumns, UsageError
from batcher.input import rules as row_rules
from batcher.input.columnar import Columns, Flags, Strings
from batcher.input.earlier import RESULT_COLUMNS, EarlierResults, earlier_results, split_columns
from batcher.input.meaning import lost_characters, printable, refuse_look_alikes
from batcher.input.table import InputFormat, Table, check_encoding, read_table
from batcher.models import KNOWN_STATUSES, Outcome, RowGroup, canonical_status
from batcher.support.csvtext import DELIMITERS, normalize_header
from batcher.support.words import plural

STATUS_COLUMN_IF_PRESENT = ""
STATUS_LOOKALIKES = frozenset({"status", "newstatus", "targetstatus"})
# The spreadsheet row of data row i when no row is blank: the header is row 1 (see LoadedInput.row_number).
FIRST_DATA_ROW = 2
MAX_COLUMNS_LISTED = 20
# header keys (see normalize_header) that name a field besides the field's own name
HEADER_ALIASES = {"email": EMAIL_COLUMN}
EMAIL_HINT = " Or name people by email: an Email column, or --column email_address=HEADER."


@dataclass(frozen=True, slots=True)
class InputOptions:
    """How to read the input file; the defaults detect what they can."""

    delimiter: str | None = None  # ",", ";" or "\t"; None: the file's sep= line, else the one that splits most
    encoding: str | None = None  # a Python codec name; None: UTF-8, with or without a byte-order mark
    sheet: str | None = None  # .xlsx only; None: the first sheet
    columns: tuple[tuple[str, str], ...] = ()  # (field, header) pairs, from --column
    only: frozenset[str] | None = None  # an earlier results file: keep only rows with these outcomes
    # the column holding each row's target status (--status-column), matched like the headers; None: no such
    # column (every row takes --status; an earlier results file's target_status when --status is not given);
    # STATUS_COLUMN_IF_PRESENT (the library's default, not the command line's): the registration_status column
    status_column: str | None = ""
    max_input_mb: float = DEFAULT_MAX_INPUT_MB  # a larger file is refused before it is read (--max-input-mb)

    def __post_init__(self) -> None:
        if self.delimiter is not None and self.delimiter not in DELIMITERS:
            raise UsageError(f"--delimiter takes a comma, a semicolon or tab (got {self.delimiter!r})")
        if self.encoding is not None:
            check_encoding(self.encoding)
        if not (math.isfinite(self.max_input_mb) and self.max_input_mb > 0):
            raise UsageError(f"--max-input-mb must be a number of MiB above 0 (got {self.max_input_mb!r})")
        fields = [field for field, _ in self.columns]
        for field, header in self.columns:
            if field not in FIELDS:
                raise UsageError(f"--column {field}=...: {field!r} is not one of {', '.join(FIELDS)}")
            if not header.strip() and field != EMAIL_COLUMN:  # email_address= : no email column, no email check
                raise UsageError(f"--column {field}= needs the header of the column after '='")
            if fields.count(field) > 1:
                raise UsageError(f"--column {field}=... is given more than once")
        headers = [header.strip().casefold() for _, header in self.columns if header.strip()]
        if len(set(headers)) < len(headers):
            raise UsageError("--column maps one header to two fields; each column can hold only one of them")


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
    row_number: npt.NDArray[np.int64]  # per row, its row in a spreadsheet (blank rows counted): use in messages
    source: InputFormat  # the input's separator, encoding and byte-order mark; the results follow it
    carried_over: Flags  # rows an earlier results file marks succeeded (no --only): in no group, not sent
    field_columns: Mapping[str, int] = dataclasses.field(default_factory=dict)  # field -> position in header
    skipped_rows: int = 0  # rows of an earlier results file left out by --only
    earlier: EarlierResults | None = None  # an earlier results file's own result columns, per row kept
    # per row, the status the file says the registration has now (its registration_status column, when that
    # column is not the target column), upper-cased, "Cancelled" as CANCELED; "" where it states none
    stated_status: Strings | None = None
    stated_column: str = ""  # the header of that column, "" when there is none
    # people-shaped input: rows valid so far but in no group until resolve.py reads them (an email, or no track)
    needs_resolution: Flags | None = None  # None: no row needs resolving
    email_address: Strings | None = None  # per row that waits, lower case and trimmed ("" elsewhere); None: none

    @property
    def row_count(self) -> int:
        return len(self.invalid_reason)

    @property
    def carried_over_rows(self) -> int:
        return int(np.count_nonzero(self.carried_over))


def load_input(path: Path, *, default_status: str | None, options: InputOptions = DEFAULT_OPTIONS) -> LoadedInput:
    """Read, validate and group an input file (CSV, or .xlsx by its suffix).

    Raises:
        InputError: the file cannot be read or trusted, or a required column is missing.
        UsageError: --status is unknown, or an option does not fit this file.
    """
    default = _normalize_default_status(default_status)
    table = read_table(
        path,
        delimiter=options.delimiter,
        encoding=options.encoding,
        sheet=options.sheet,
        max_input_mb=options.max_input_mb,
    )
    header, columns_in, row_number, skipped_rows, earlier = _select_rows(path, table, options.only)
    columns = _match_columns(path, header, options.columns)
    held = None
    if earlier is not None and options.only is None:
        held = np.char.lower(np.char.strip(earlier.outcome.astype(str))) == Outcome.SUCCEEDED.value
    target_position = None
    if options.status_column == STATUS_COLUMN_IF_PRESENT:
        target_position = columns.get(STATUS_COLUMN)
    elif options.status_column is not None:
        target_position = find_status_column(path, header, options.status_column)
    if target_position is not None:
        targets = columns_in[target_position]
    elif default is None and earlier is not None:  # an earlier results file: the status its run was to set
        targets = pa.chunked_array([pa.array(earlier.target_status.astype(str), pa.string())])
    else:
        targets = None
    empty = pa.chunked_array([pa.repeat(pa.scalar("", pa.string()), len(row_number))])
    checked = row_rules.check_rows(
        columns_in[columns["event_id"]],
        columns_in[columns["track_id"]] if "track_id" in columns else empty,  # every row: the default track
        columns_in[columns["registration_id"]] if "registration_id" in columns else empty,
        targets,
        default=default,
        held=held,
        email=columns_in[columns[EMAIL_COLUMN]] if EMAIL_COLUMN in columns else None,
    )
    row_count = len(checked.invalid_reason)
    carried = np.zeros(row_count, dtype=np.bool_)
    if held is not None:
        carried = held & (checked.invalid_reason == "") & (checked.duplicate_of < 0)
    stated_position = columns.get(STATUS_COLUMN)
    if stated_position == target_position:
        stated_position = None  # the column the user named as the target is not a current status
    stated = None if stated_position is None else row_rules.stated_statuses(columns_in[stated_position])

    notes: list[str] = []
    if checked.aliased:
        notes.append(
            f'{plural(checked.aliased, "row")} spelled the status "Cancelled"; sent as CANCELED, the API\'s spelling'
        )
    if checked.needs_resolution is not None:
        notes.append(_people_note(checked))
    if EMAIL_COLUMN in columns:
        notes.extend(lost_characters(header[columns[EMAIL_COLUMN]], columns_in[columns[EMAIL_COLUMN]], row_number))
    if target_position is None and default is not None:
        lookalike = next((name for name in header if normalize_header(name) in STATUS_LOOKALIKES), None)
        if lookalike is not None:
            notes.append(
                f'the column "{printable(lookalike)}" is not read (every row takes --status {default}); if it holds '
                f"the status to set, use --status-column {shlex.quote(lookalike)} instead"
            )

    return LoadedInput(
        path=path,
        header=tuple(header),
        values=Columns(columns_in),
        event_id=checked.event_id,
        track_id=checked.track_id,
        registration_id=checked.registration_id,
        registration_status=checked.registration_status,
        invalid_reason=checked.invalid_reason,
        duplicate_of=checked.duplicate_of,
        groups=checked.groups,
        notes=tuple(notes),
        row_number=row_number,
        source=table.source,
        carried_over=carried,
        field_columns=columns,
        skipped_rows=skipped_rows,
        earlier=earlier,
        stated_status=stated,
        stated_column=header[stated_position] if stated_position is not None else "",
        needs_resolution=checked.needs_resolution,
        email_address=checked.email_address,
    )


def status_like_column(header: Sequence[str]) -> str | None:
    """The first header that looks like a status column (registration_status, Status, New Status...)."""
    keys = {STATUS_COLUMN.replace("_", ""), *STATUS_LOOKALIKES}
    return next((name for name in header if normalize_header(name) in keys), None)


def no_target_message(path: Path, header: Sequence[str]) -> str:
    """The refusal of a run given neither --status nor --status-column."""
    column = status_like_column(header)
    if column is None:
        return (
            f"{path}: no target status: give --status S to set one status for every row ({', '.join(KNOWN_STATUSES)})"
        )
    return (
        f'{path}: no target status given, and the column "{printable(column)}" is not taken as one (an export\'s '
        f"status column says what each registration is now): give --status S to set one status for every row, or "
        f"--status-column {shlex.quote(column)} if that column holds the status to set; nothing was sent"
    )


def find_status_column(path: Path, header: Sequence[str], wanted: str) -> int:
    """The position of the column --status-column names, matched like the input's headers.

    Raises:
        InputError: no column, or more than one, matches.
    """
    key = normalize_header(wanted)
    positions = [position for position, name in enumerate(header) if normalize_header(name) == key]
    if not positions:
        raise InputError(
            f'{path}: --status-column {wanted}: no column "{printable(wanted)}" (found: {_listed(list(header))}).'
        )
    if len(positions) > 1:
        raise InputError(f'{path}: --status-column {wanted}: {len(positions)} columns match "{printable(wanted)}".')
    return positions[0]


def _select_rows(
    path: Path, table: Table, only: frozenset[str] | None
) -> tuple[list[str], list[pa.ChunkedArray], npt.NDArray[np.int64], int, EarlierResults | None]:
    """An earlier results file loses its result columns and, with --only, the rows of other outcomes.

    Returns the user's header, their columns, the rows' spreadsheet numbers, how many rows --only skipped, and
    the earlier result columns of the rows kept (None when the file is not a results file).
    """
    header, columns, result_columns = split_columns(table.header, table.columns)
    row_number = table.row_number
    if result_columns is None:
        if only is not None:
            raise UsageError(
                f"{path}: --only needs the results file of an earlier run (its last columns are "
                f"{', '.join(RESULT_COLUMNS)}); this file has no such columns."
            )
        return header, columns, row_number, 0, None
    if only is None:
        return header, columns, row_number, 0, earlier_results(result_columns)
    outcome = pc.utf8_lower(pc.utf8_trim_whitespace(result_columns[0]))
    keep = pc.is_in(outcome, value_set=pa.array(sorted(only), pa.string()))
    wanted = ",".join(sorted(only))
    if not pc.any(keep).as_py():
        counts = pc.value_counts(outcome).to_pylist()  # in order of first appearance; the sort below keeps it
        counts.sort(key=lambda pair: -int(pair["counts"]))
        found = ", ".join(f"{pair['counts']} {printable(str(pair['values']), 20) or 'empty'}" for pair in counts[:6])
        raise UsageError(f"{path}: no row has an outcome in --only {wanted}, so there is nothing to send ({found}).")
    kept = [column.filter(keep) for column in columns]
    skipped = len(keep) - pc.sum(keep).as_py()
    earlier = earlier_results([column.filter(keep) for column in result_columns])
    return header, kept, row_number[np.asarray(keep.to_numpy(), dtype=np.bool_)], skipped, earlier


def _match_columns(path: Path, header: list[str], explicit: tuple[tuple[str, str], ...]) -> dict[str, int]:
    found = {field: _find_header(path, header, field, wanted) for field, wanted in explicit if wanted.strip()}
    claimed = set(found.values())
    keys = {normalize_header(name): name for name in FIELDS} | HEADER_ALIASES
    for position, name in enumerate(header):
        key = keys.get(normalize_header(name))
        if key is None or position in claimed or any(field == key for field, _ in explicit):
            continue
        if key in found:
            raise UnclearColumns(
                f'{path}: columns "{printable(header[found[key]])}" and "{printable(name)}" both match "{key}"; '
                f"rename or remove one of them, or choose one with --column {key}=HEADER.",
                fields=(key,),
                header=tuple(header),
            )
        found[key] = position
    refuse_look_alikes(path, header, found)
    missing = [name for name in _required(found) if name not in found]
    if missing:
        hint = (
            " Only one column was found: check the separator (--delimiter) or the sheet (--sheet)."
            if len(header) == 1
            else ""
        )
        names = " and ".join(", ".join(f'"{name}"' for name in missing).rsplit(", ", 1))
        plural = "s" if len(missing) > 1 else ""
        options = " ".join(f"--column {name}=HEADER" for name in missing)
        raise UnclearColumns(
            f"{path}: no {names} column{plural} (found: {_listed(header)}). "
            f"Headers match ignoring case, spaces, dashes and underscores; or name the column{plural} with "
            f"{options}." + hint + (EMAIL_HINT if "registration_id" in missing else ""),
            fields=tuple(missing),
            header=tuple(header),
        )
    return found


def _people_note(checked: row_rules.CheckedRows) -> str:
    """What resolving the people-shaped rows will read, and its most requests (a track's pages are not known yet)."""
    needs = checked.needs_resolution if checked.needs_resolution is not None else np.zeros(0, dtype=np.bool_)
    rows = np.flatnonzero(needs)
    events = {str(checked.event_id[row]) for row in rows if not checked.track_id[row]}
    emails = checked.email_address
    per_track: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        if emails is not None and emails[row]:
            per_track.setdefault((str(checked.event_id[row]), str(checked.track_id[row])), set()).add(str(emails[row]))
    bound = len(events) + sum(1 + len(found) if len(found) > 1 else 1 for found in per_track.values())
    return (
        f"{plural(len(rows), 'row')} naming people by email or without a track_id: run first reads the default "
        "track of "
        f"{plural(len(events), 'event')} and looks the emails up in each track once "
        f"(at most {plural(bound, 'read request')})"
    )


def _required(found: Mapping[str, int]) -> tuple[str, ...]:
    """The columns a file must have: without track_id rows take the default track; an email can stand for the ID."""
    return ("event_id",) if EMAIL_COLUMN in found else ("event_id", "registration_id")


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
    names = ", ".join(printable(name, 40) for name in header[:MAX_COLUMNS_LISTED])
    more = len(header) - MAX_COLUMNS_LISTED
    return names + (f", and {more} more" if more > 0 else "")


def _normalize_default_status(default_status: str | None) -> str | None:
    if default_status is None:
        return None
    status = canonical_status(default_status)
    if status not in KNOWN_STATUSES:
        raise UsageError(f"--status {default_status!r} is not a known status; use one of {', '.join(KNOWN_STATUSES)}")
    return status
