"""Reads the input CSV, matches its headers, validates every row and groups the sendable rows.

The only module that parses the input file. Per-row data stays in columns (numpy arrays) so a
million rows cost seconds, not minutes. pyarrow reads regular files; pandas' C parser reads the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

from batcher.errors import InputError, UsageError
from batcher.models import KNOWN_STATUSES, RowGroup

REQUIRED_COLUMNS = ("event_id", "track_id", "registration_id")
STATUS_COLUMN = "registration_status"
STATUS_ALIASES = {"CANCELLED": "CANCELED"}
UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
TRACK_PATTERN = r"[A-Za-z0-9]{1,64}"
# The spreadsheet row of data row i: the header is row 1.
FIRST_DATA_ROW = 2

Strings = npt.NDArray[np.object_]


@dataclass(frozen=True, slots=True)
class LoadedInput:
    """An input file, validated: original values per column plus the per-row verdict."""

    path: Path
    header: tuple[str, ...]  # as the user wrote it
    values: tuple[Strings, ...]  # one array per header column, values exactly as written
    event_id: Strings  # normalized, API form ("" where invalid)
    track_id: Strings
    registration_id: Strings
    registration_status: Strings
    invalid_reason: Strings  # "" for a valid row
    duplicate_of: npt.NDArray[np.int64]  # input row index of the first copy, -1 if none
    groups: tuple[RowGroup, ...]
    notes: tuple[str, ...]  # things worth telling the user, e.g. accepted spellings

    @property
    def row_count(self) -> int:
        return len(self.invalid_reason)


def normalize_header(name: str) -> str:
    """Header key: case, surrounding spaces and inner spaces, dashes and underscores ignored."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def load_input(path: Path, *, default_status: str | None) -> LoadedInput:
    """Read, validate and group an input CSV.

    Raises:
        InputError: the file cannot be read, or a required column is missing.
    """
    header, table = _read_table(path)
    columns = _match_columns(path, header)
    default = _normalize_default_status(default_status)

    raw = pd.DataFrame(
        {
            "e": table[columns["event_id"]],
            "t": table[columns["track_id"]],
            "r": table[columns["registration_id"]],
            "s": table[columns[STATUS_COLUMN]] if STATUS_COLUMN in columns else pd.Series("", index=table.index),
        }
    )
    status_upper = raw["s"].str.strip().str.upper()
    status = status_upper.replace(STATUS_ALIASES)
    if default is not None:
        status = status.mask(status == "", default)
    keys = pd.DataFrame(
        {
            "e": raw["e"].str.strip().str.lower(),
            "t": raw["t"].str.strip(),
            "r": raw["r"].str.strip().str.lower(),
            "s": status,
        }
    )

    notes: list[str] = []
    aliased = int(((status_upper != status) & (status_upper != "")).sum())
    if aliased:
        notes.append(f'{aliased} row(s) spelled the status "Cancelled"; sent as CANCELED, the API\'s spelling')

    reasons = _mark_conflicts(_row_reasons(keys, raw), keys)
    valid = (reasons == "").to_numpy()
    duplicate_of = _find_duplicates(keys, valid)
    groups = _group_rows(keys, valid & (duplicate_of < 0))

    return LoadedInput(
        path=path,
        header=tuple(header),
        values=tuple(table[position].to_numpy(dtype=object) for position in range(len(header))),
        event_id=keys["e"].to_numpy(dtype=object),
        track_id=keys["t"].to_numpy(dtype=object),
        registration_id=keys["r"].to_numpy(dtype=object),
        registration_status=keys["s"].to_numpy(dtype=object),
        invalid_reason=reasons.to_numpy(dtype=object),
        duplicate_of=duplicate_of,
        groups=groups,
        notes=tuple(notes),
    )


def _read_table(path: Path) -> tuple[list[str], pd.DataFrame]:
    """The header as written, and the data rows: one string column per header cell, numbered from 0."""
    if not path.exists():
        raise InputError(f"{path}: no such file. Check the path, or run 'ls' in that folder.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a CSV file.")
    try:
        table = _read_fast(path)
    except pa.ArrowException:
        # Anything unusual (rows of uneven length, lines of only spaces, bad UTF-8, an empty file) is read
        # the careful way, which reads such files and words their errors for the user.
        table = _read_careful(path)
    if not table.num_rows:
        raise InputError(f"{path}: the file is empty; it needs a header row and at least one data row.")
    header = [str(column[0].as_py()) for column in table.columns]
    if table.num_rows == 1:
        raise InputError(f"{path}: has a header row but no data rows.")
    frame = table.slice(1).to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow", na_value=np.nan)}.get)
    frame.columns = pd.RangeIndex(table.num_columns)
    return header, frame


def _read_fast(path: Path) -> pa.Table:
    """Every cell exactly as written, as a string, the header as row 0; raises pa.ArrowException if irregular."""
    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(autogenerate_column_names=True),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True),
        convert_options=pa_csv.ConvertOptions(
            default_column_type=pa.string(), strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    if table.num_columns < 2:  # pandas skips a line of spaces in a one-column file; pyarrow reads it as a value
        raise pa.ArrowInvalid("one column")
    if not _ends_outside_quotes(path, table):
        raise pa.ArrowInvalid("the file ends inside a quoted value")
    return table


def _ends_outside_quotes(path: Path, table: pa.Table) -> bool:
    """False when the file may end inside a quoted value, which pyarrow accepts and pandas' parser rejects.

    Only the last value of the last row can be affected (an earlier one would leave the row short of columns):
    the file must end with it, quoted and closed, or unquoted right after a delimiter or line break.
    """
    if not table.num_rows or not table.num_columns:
        return True
    last = str(table.column(table.num_columns - 1)[table.num_rows - 1].as_py()).encode()
    quoted = b'"' + last.replace(b'"', b'""') + b'"'
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - len(quoted) - 64))
        tail = handle.read().rstrip(b"\r\n")
    if tail.endswith(quoted):
        return True
    before = tail[: len(tail) - len(last)]
    return tail.endswith(last) and (not before or before[-1:] in (b",", b"\n", b"\r")) and b'"' not in last[:1]


def _read_careful(path: Path) -> pa.Table:
    """The same table, read by pandas' C parser: pads short rows and skips lines of only spaces."""
    try:
        raw = pd.read_csv(
            path,
            dtype=str,
            header=None,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: the file is empty; it needs a header row and at least one data row.") from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: byte {exc.start} is not valid UTF-8. Save the file as 'CSV UTF-8' from your spreadsheet."
        ) from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a readable CSV file ({_first_line(str(exc))}).") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    return pa.table(
        {
            f"f{position}": pa.array(raw[name].to_numpy(dtype=object), type=pa.string())
            for position, name in enumerate(raw.columns)
        }
    )


def _match_columns(path: Path, header: list[str]) -> dict[str, int]:
    wanted = {normalize_header(name): name for name in (*REQUIRED_COLUMNS, STATUS_COLUMN)}
    found: dict[str, int] = {}
    for position, name in enumerate(header):
        key = wanted.get(normalize_header(name))
        if key is None:
            continue
        if key in found:
            raise InputError(
                f'{path}: columns "{header[found[key]]}" and "{name}" both match "{key}"; rename or remove one of them.'
            )
        found[key] = position
    missing = [name for name in REQUIRED_COLUMNS if name not in found]
    if missing:
        listed = ", ".join(header)
        raise InputError(
            f'{path}: no "{missing[0]}" column (found: {listed}). '
            "Headers match ignoring case, spaces, dashes and underscores."
        )
    return found


def _normalize_default_status(default_status: str | None) -> str | None:
    if default_status is None:
        return None
    status = STATUS_ALIASES.get(default_status.strip().upper(), default_status.strip().upper())
    if status not in KNOWN_STATUSES:
        raise UsageError(f"--status {default_status!r} is not a known status; use one of {', '.join(KNOWN_STATUSES)}")
    return status


def _row_reasons(keys: pd.DataFrame, raw: pd.DataFrame) -> pd.Series:
    """The first reason each row cannot be sent, "" where it can. Checked column-wise.

    keys holds the normalized e(vent), t(rack), r(egistration) and s(tatus) columns; raw the cells as written.
    """
    event_id, track_id, registration_id, status = keys["e"], keys["t"], keys["r"], keys["s"]
    checks: list[tuple[pd.Series, str | pd.Series]] = [
        (event_id == "", "event_id is empty"),
        (~event_id.str.fullmatch(UUID_PATTERN), "event_id is not a UUID: " + _quoted(raw["e"])),
        (track_id == "", "track_id is empty"),
        (~track_id.str.fullmatch(TRACK_PATTERN), "track_id may hold only letters and digits: " + _quoted(raw["t"])),
        (registration_id == "", "registration_id is empty"),
        (~registration_id.str.fullmatch(UUID_PATTERN), "registration_id is not a UUID: " + _quoted(raw["r"])),
        (status == "", "no registration_status in this row and no --status given"),
        (
            ~status.isin(KNOWN_STATUSES),
            "unknown registration_status " + _quoted(raw["s"]) + "; use one of " + ", ".join(KNOWN_STATUSES),
        ),
    ]
    reasons = pd.Series("", index=keys.index, dtype=object)
    for failed, reason in reversed(checks):
        reasons = reasons.mask(failed.to_numpy(dtype=bool), reason)
    return reasons


def _quoted(values: pd.Series) -> pd.Series:
    return '"' + values.str.slice(0, 80) + '"'


def _mark_conflicts(reasons: pd.Series, keys: pd.DataFrame) -> pd.Series:
    """A registration asked to take two different statuses is ambiguous: every such row is invalid."""
    valid = (reasons == "").to_numpy()
    distinct = keys[valid].drop_duplicates()
    conflicted = distinct[distinct.duplicated(["e", "t", "r"], keep=False)]
    if conflicted.empty:
        return reasons
    conflict_keys = pd.MultiIndex.from_frame(conflicted[["e", "t", "r"]].drop_duplicates())
    hit = pd.MultiIndex.from_frame(keys[["e", "t", "r"]]).isin(conflict_keys) & valid
    message = "this registration is asked to take more than one status in this file; keep only the one you mean"
    return reasons.mask(hit, message)


def _find_duplicates(keys: pd.DataFrame, valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """For each later copy of an exact repeat, the row index of its first copy; -1 elsewhere."""
    duplicate_of = np.full(len(keys), -1, dtype=np.int64)
    candidates = keys[valid]
    repeated = candidates[candidates.duplicated(keep=False)]
    if repeated.empty:
        return duplicate_of
    positions = pd.Series(repeated.index.to_numpy(), index=repeated.index)
    first = positions.groupby([repeated["e"], repeated["t"], repeated["r"], repeated["s"]], sort=False).transform("min")
    later = first.index.to_numpy() != first.to_numpy()
    duplicate_of[first.index.to_numpy()[later]] = first.to_numpy()[later]
    return duplicate_of


def _group_rows(keys: pd.DataFrame, sendable: npt.NDArray[np.bool_]) -> tuple[RowGroup, ...]:
    """Sendable rows grouped by (event, track, status), groups in order of first appearance."""
    rows = np.flatnonzero(sendable)
    if not len(rows):
        return ()
    chosen = keys[sendable]
    ids = chosen["r"].to_numpy(dtype=object)
    groups: list[RowGroup] = []
    for key, positions in chosen.groupby(["e", "t", "s"], sort=False).indices.items():
        event_id, track_id, status = cast(tuple[str, str, str], key)
        groups.append(
            RowGroup(
                event_id=event_id,
                track_id=track_id,
                registration_status=status,
                registration_ids=tuple(ids[positions].tolist()),
                rows=tuple(rows[positions].tolist()),
            )
        )
    return tuple(groups)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "parser error"
