"""Reads the input CSV, matches its headers, validates every row and groups the sendable rows.

The only module that parses the input file. Per-row data stays in columns: each check runs once per distinct
value of a column (pyarrow compute), and rows are compared, deduplicated and grouped by integer codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
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
CONFLICT_REASON = "this registration is asked to take more than one status in this file; keep only the one you mean"
# A column whose first rows are mostly distinct (registration IDs, e-mail addresses) is checked value by value;
# any other is dictionary-encoded and checked once per distinct value.
_SAMPLE_ROWS = 4096
_DISTINCT_SHARE = 0.25
_MAX_CODE = 1 << 62
_WORKERS = 2
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)

Strings = npt.NDArray[np.object_]
Codes = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class LoadedInput:
    """An input file, validated: original values per column plus the per-row verdict."""

    path: Path
    header: tuple[str, ...]  # as the user wrote it
    values: Sequence[Strings]  # one array per header column, values exactly as written
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


class _Columns(Sequence[Strings]):
    """The input's columns as written, each made into an array of Python strings when first used.

    `plan` never needs them, and a column of a million strings costs a tenth of a second and tens of megabytes.
    """

    __slots__ = ("_made", "_makers")

    def __init__(self, makers: list[Callable[[], Strings]]) -> None:
        self._makers = makers
        self._made: dict[int, Strings] = {}

    def __len__(self) -> int:
        return len(self._makers)

    @overload
    def __getitem__(self, index: int) -> Strings: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Strings, ...]: ...

    def __getitem__(self, index: int | slice) -> Strings | tuple[Strings, ...]:
        if isinstance(index, slice):
            return tuple(self[position] for position in range(len(self))[index])
        position = range(len(self))[index]  # negative indexes; IndexError past the end
        if position not in self._made:
            self._made[position] = self._makers[position]()
        return self._made[position]

    def __repr__(self) -> str:
        return f"<{len(self)} input columns, {len(self._made)} made>"


@dataclass(frozen=True, slots=True)
class _Column:
    """One column as its distinct values: row i holds distinct[index[i]], or distinct[i] when index is None."""

    distinct: pa.ChunkedArray  # values as written
    index: npt.NDArray[np.int32] | None

    def per_row(self, per_value: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return per_value if self.index is None else per_value[self.index]


@dataclass(frozen=True, slots=True)
class _Checked:
    """A key column's distinct values checked: their API form, their codes, and the checks each fails."""

    normalized: pa.ChunkedArray
    unchanged: Flags  # the API form is the value as written
    code: Codes | None  # equal API forms share a code; None: not computed yet
    checks: list[tuple[Flags, str, str | None]]  # (failed, message, suffix), in order; see _Key
    aliased: Flags | None = None  # statuses only: an accepted misspelling
    distinct: bool = False  # the API forms are known to be pairwise distinct


@dataclass(frozen=True, slots=True)
class _Key:
    """A checked key column. A value's reason is its first failed check's message, followed (unless the check's
    suffix is None) by the value as written, quoted and cut to 80 characters, and the suffix."""

    column: _Column
    checked: _Checked
    code: Codes  # per distinct value
    invalid: Flags
    reason: Strings  # "" where valid

    @classmethod
    def of(cls, column: _Column, checked: _Checked) -> _Key:
        reason = np.full(len(checked.unchanged), "", dtype=object)
        invalid = np.zeros(len(reason), dtype=np.bool_)
        for failed, message, suffix in reversed(checked.checks):
            where = np.flatnonzero(failed)
            invalid[where] = True
            if suffix is None or not len(where):
                reason[where] = message
                continue
            quoted = pc.utf8_slice_codeunits(column.distinct.take(pa.array(where)), 0, 80)
            reason[where] = _strings(pc.binary_join_element_wise(message + '"', quoted, '"' + suffix, ""))
        code = checked.code if checked.code is not None else _codes_of(checked.normalized)
        return cls(column, checked, code, invalid, reason)

    def codes(self) -> Codes:
        return np.asarray(self.column.per_row(self.code), dtype=np.int64)

    def normalized(self, distinct_objects: Strings) -> Strings:
        """Per row, the API form, given the distinct values as Python strings; equal values share a string."""
        normalized = distinct_objects.copy()
        changed = np.flatnonzero(~self.checked.unchanged)
        if len(changed):
            normalized[changed] = _strings(self.checked.normalized.take(pa.array(changed)))
        return np.asarray(self.column.per_row(normalized), dtype=object)


def normalize_header(name: str) -> str:
    """Header key: case, surrounding spaces and inner spaces, dashes and underscores ignored."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def load_input(path: Path, *, default_status: str | None) -> LoadedInput:
    """Read, validate and group an input CSV.

    Raises:
        InputError: the file cannot be read, or a required column is missing.
    """
    header, table = _read_table(path)
    found = _match_columns(path, header)
    default = _normalize_default_status(default_status)
    row_count = len(table[0])
    event, track, registration, status, objects = _check_columns(table, found, default)
    keys = {found["event_id"]: event, found["track_id"]: track, found["registration_id"]: registration}
    if STATUS_COLUMN in found:
        keys[found[STATUS_COLUMN]] = status
    values = _Columns(
        [
            partial(_rows, keys[position].column, objects[position]) if position in keys else partial(_written, column)
            for position, column in enumerate(table)
        ]
    )
    notes: list[str] = []
    if status.checked.aliased is not None:
        aliased = int(np.count_nonzero(status.column.per_row(status.checked.aliased)))
        if aliased:
            notes.append(f'{aliased} row(s) spelled the status "Cancelled"; sent as CANCELED, the API\'s spelling')

    reasons, valid = _row_reasons(row_count, (event, track, registration, status))
    event_track = _combine(event.codes(), track.codes())
    status_code = status.codes()
    duplicate_of = np.full(row_count, -1, dtype=np.int64)
    if not (registration.column.index is None and registration.checked.distinct):  # else no row repeats another
        registration_code = registration.codes()
        if np.bincount(registration_code[valid]).max(initial=0) > 1:
            entry = _dense(_combine(event_track, registration_code))
            _mark_conflicts(reasons, valid, entry, status_code)
            duplicate_of = _find_duplicates(entry, valid)
    sendable = np.flatnonzero(valid & (duplicate_of < 0))
    order, group_ends = _group_order(sendable, _combine(event_track, status_code))

    registration_ids = registration.normalized(objects[found["registration_id"]])
    event_ids = event.normalized(objects[found["event_id"]])
    track_ids = track.normalized(objects[found["track_id"]])
    statuses = status.normalized(objects[found.get(STATUS_COLUMN, -1)])
    groups = _build_groups(order, group_ends, event_ids, track_ids, statuses, registration_ids)

    return LoadedInput(
        path=path,
        header=tuple(header),
        values=values,
        event_id=event_ids,
        track_id=track_ids,
        registration_id=registration_ids,
        registration_status=statuses,
        invalid_reason=reasons,
        duplicate_of=duplicate_of,
        groups=groups,
        notes=tuple(notes),
    )


def _check_columns(
    table: list[pa.ChunkedArray], found: dict[str, int], default: str | None
) -> tuple[_Key, _Key, _Key, _Key, dict[int, Strings]]:
    """The event, track, registration and status keys, and each key column's distinct values as Python strings.

    pyarrow's kernels release the GIL: worker threads check the key columns while this thread makes the strings.
    """
    row_count = len(table[0])
    if STATUS_COLUMN in found:
        status_values = table[found[STATUS_COLUMN]]
    else:
        status_values = pa.chunked_array([pa.repeat(pa.scalar("", pa.string()), row_count)])
    registration_position = found["registration_id"]
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        registration_column = _encode(table[registration_position])
        # the longest checks first: registration IDs are distinct as a rule, and proving it beats coding them
        registration_task = pool.submit(_check_uuid, registration_column.distinct, "registration_id", codes=False)
        distinct_task = pool.submit(_surely_distinct, registration_column.distinct)
        event_task = pool.submit(_encode_and_check, table[found["event_id"]], partial(_check_uuid, name="event_id"))
        track_task = pool.submit(_encode_and_check, table[found["track_id"]], _check_track)
        status_task = pool.submit(_encode_and_check, status_values, partial(_check_status, default=default))
        registration_objects = _strings(registration_column.distinct)
        (event_column, event_checked), (track_column, track_checked), (status_column, status_checked) = (
            task.result() for task in (event_task, track_task, status_task)
        )
        registration_checked = registration_task.result()
        if distinct_task.result() and registration_checked.unchanged.all():
            distinct_count = len(registration_checked.unchanged)
            registration_checked = replace(
                registration_checked, code=np.arange(distinct_count, dtype=np.int64), distinct=True
            )
    objects = {
        found["event_id"]: _strings(event_column.distinct),
        found["track_id"]: _strings(track_column.distinct),
        registration_position: registration_objects,
        found.get(STATUS_COLUMN, -1): _strings(status_column.distinct),
    }
    return (
        _Key.of(event_column, event_checked),
        _Key.of(track_column, track_checked),
        _Key.of(registration_column, registration_checked),
        _Key.of(status_column, status_checked),
        objects,
    )


def _encode_and_check(
    values: pa.ChunkedArray, check: Callable[[pa.ChunkedArray], _Checked]
) -> tuple[_Column, _Checked]:
    column = _encode(values)
    return column, check(column.distinct)


def _rows(column: _Column, distinct_objects: Strings) -> Strings:
    """Every row's value as written, from a key column's distinct values."""
    return np.asarray(column.per_row(distinct_objects), dtype=object)


def _written(values: pa.ChunkedArray) -> Strings:
    """Every row's value as written, as Python strings; equal values of a repetitive column share one string."""
    column = _encode(values)
    return _rows(column, _strings(column.distinct))


def _read_table(path: Path) -> tuple[list[str], list[pa.ChunkedArray]]:
    """The header as written and one string column per header cell, data rows only."""
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
    return header, [column.slice(1) for column in table.columns]


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
    import pandas as pd  # noqa: PLC0415 - only files pyarrow refuses pay for importing pandas

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


def _encode(values: pa.ChunkedArray) -> _Column:
    sample = values.slice(0, _SAMPLE_ROWS)
    if pc.count_distinct(sample).as_py() > _DISTINCT_SHARE * len(sample):
        return _Column(values, None)
    encoded = values.dictionary_encode().combine_chunks()  # the chunks share one dictionary
    return _Column(pa.chunked_array([encoded.dictionary], type=values.type), _indices(encoded))


def _strings(values: pa.ChunkedArray | list[str]) -> Strings:
    if isinstance(values, list):
        return np.array(values, dtype=object)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


# The helpers below read pyarrow's buffers with numpy rather than call to_numpy(): the first to_numpy() (or Python
# value handed to pyarrow) imports pandas, a sixth of a second that the main thread pays while workers compute.


def _flags(values: pa.ChunkedArray) -> Flags:
    """A boolean column without nulls (what the comparison kernels return here) as a numpy array."""
    parts: list[Flags] = []
    for chunk in values.chunks:
        if chunk.null_count:
            return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.bool_)
        if len(chunk):
            packed = np.frombuffer(chunk.buffers()[1], dtype=np.uint8)
            bits = np.unpackbits(packed, count=chunk.offset + len(chunk), bitorder="little")
            parts.append(bits[chunk.offset :].astype(np.bool_))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.bool_)


def _byte_lengths(values: pa.ChunkedArray) -> npt.NDArray[np.int32]:
    parts = [np.diff(_offsets(chunk)) for chunk in values.chunks if len(chunk)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def _offsets(chunk: pa.StringArray) -> npt.NDArray[np.int32]:
    return np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=len(chunk) + 1, offset=chunk.offset * 4)


def _fullmatch(values: pa.ChunkedArray, pattern: str) -> Flags:
    # the kernel behind pandas' str.fullmatch on arrow-backed strings
    return _flags(pc.match_substring_regex(values, f"^({pattern})$"))


def _checked(
    raw: pa.ChunkedArray,
    normalized: pa.ChunkedArray,
    checks: list[tuple[Flags, str, str | None]],
    *,
    codes: bool = True,
    aliased: Flags | None = None,
) -> _Checked:
    unchanged = _flags(pc.equal(raw, normalized))
    return _Checked(normalized, unchanged, _codes_of(normalized) if codes else None, checks, aliased)


def _check_uuid(raw: pa.ChunkedArray, name: str, *, codes: bool = True) -> _Checked:
    normalized = pc.utf8_lower(pc.utf8_trim_whitespace(raw))
    empty = _byte_lengths(normalized) == 0
    not_uuid = ~_fullmatch(normalized, UUID_PATTERN)
    checks = [(empty, f"{name} is empty", None), (not_uuid, f"{name} is not a UUID: ", "")]
    return _checked(raw, normalized, checks, codes=codes)


def _check_track(raw: pa.ChunkedArray) -> _Checked:
    normalized = pc.utf8_trim_whitespace(raw)
    empty = _byte_lengths(normalized) == 0
    unsafe = ~_fullmatch(normalized, TRACK_PATTERN)
    checks = [(empty, "track_id is empty", None), (unsafe, "track_id may hold only letters and digits: ", "")]
    return _checked(raw, normalized, checks)


def _check_status(raw: pa.ChunkedArray, default: str | None) -> _Checked:
    upper = pc.utf8_upper(pc.utf8_trim_whitespace(raw))
    status = upper
    for alias, status_name in STATUS_ALIASES.items():
        status = pc.if_else(pc.equal(status, alias), status_name, status)
    if default is not None:
        status = pc.if_else(pc.equal(status, ""), default, status)
    aliased = _flags(pc.and_(pc.not_equal(upper, status), pc.not_equal(upper, "")))
    missing = _flags(pc.equal(status, ""))
    unknown = ~_flags(pc.is_in(status, value_set=pa.array(KNOWN_STATUSES)))
    checks = [
        (missing, "no registration_status in this row and no --status given", None),
        (unknown, "unknown registration_status ", "; use one of " + ", ".join(KNOWN_STATUSES)),
    ]
    return _checked(raw, status, checks, aliased=aliased)


def _codes_of(values: pa.ChunkedArray) -> Codes:
    """Dense codes, equal for equal values."""
    return np.asarray(_indices(values.dictionary_encode().combine_chunks()), dtype=np.int64)


def _indices(encoded: pa.DictionaryArray) -> npt.NDArray[np.int32]:
    indices = encoded.indices
    if indices.type != pa.int32() or indices.null_count:
        return np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int32)
    return np.frombuffer(indices.buffers()[1], dtype=np.int32, count=len(indices), offset=indices.offset * 4)


def _surely_distinct(values: pa.ChunkedArray) -> bool:
    """True when no two values are equal, proven by a hash; False when unsure. Much cheaper than a dictionary for
    a million registration IDs: values of one length are hashed 4 bytes at a time with array operations, sorted."""
    hashes: list[npt.NDArray[np.uint64]] = []
    for chunk in (chunk for chunk in values.chunks if len(chunk)):
        words = _fixed_width_words(chunk)
        if words is None:
            return False
        hashed = np.zeros(len(words), dtype=np.uint64)
        for position in range(words.shape[1]):
            hashed *= _HASH_MULTIPLIER
            hashed += words[:, position]
        hashes.append(hashed)
    ordered = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.uint64)
    return bool(np.all(ordered[1:] != ordered[:-1]))


def _fixed_width_words(chunk: pa.StringArray) -> npt.NDArray[np.uint32] | None:
    """The chunk's values as rows of 32-bit words, if they all have one length, a multiple of 4 bytes."""
    if chunk.null_count:
        return None
    offsets = _offsets(chunk)
    width = int(offsets[1] - offsets[0])
    if width == 0 or width % 4 or not np.all(np.diff(offsets) == width):
        return None
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8, count=width * len(chunk), offset=int(offsets[0]))
    return data.view(np.uint32).reshape(len(chunk), width // 4)


def _combine(high: Codes, low: Codes) -> Codes:
    """One code per distinct (high, low) pair."""
    if not len(low):
        return high.copy()
    span = int(low.max()) + 1
    combined = _dense(high) if int(high.max()) >= _MAX_CODE // span else high.copy()
    combined *= span  # in place: a million-row temporary less
    combined += low
    return combined


def _dense(codes: Codes) -> Codes:
    """Codes renumbered 0, 1, 2, ... in order of first appearance."""
    return np.asarray(pc.dictionary_encode(pa.array(codes)).indices, dtype=np.int64)


def _row_reasons(row_count: int, keys: tuple[_Key, ...]) -> tuple[Strings, Flags]:
    """The first reason each row cannot be sent ("" where it can), and which rows can."""
    reasons = np.full(row_count, "", dtype=object)
    valid = np.ones(row_count, dtype=np.bool_)
    for key in reversed(keys):
        rows = np.flatnonzero(key.column.per_row(key.invalid))
        if not len(rows):
            continue
        valid[rows] = False
        value = rows if key.column.index is None else key.column.index[rows]
        reasons[rows] = key.reason[value]
    return reasons, valid


def _mark_conflicts(reasons: Strings, valid: Flags, entry: Codes, status: Codes) -> None:
    """A registration asked to take two different statuses is ambiguous: every such row is invalid."""
    rows = np.flatnonzero(valid)
    if not len(rows):
        return
    lowest = np.full(int(entry.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    highest = np.full(len(lowest), -1, dtype=np.int64)
    np.minimum.at(lowest, entry[rows], status[rows])
    np.maximum.at(highest, entry[rows], status[rows])
    conflicted = rows[lowest[entry[rows]] != highest[entry[rows]]]
    reasons[conflicted] = CONFLICT_REASON
    valid[conflicted] = False


def _find_duplicates(entry: Codes, valid: Flags) -> Codes:
    """For each later copy of an exact repeat, the row index of its first copy; -1 elsewhere.

    Valid rows with one (event, track, registration) also share a status: two statuses are a conflict."""
    duplicate_of = np.full(len(entry), -1, dtype=np.int64)
    rows = np.flatnonzero(valid)
    if not len(rows):
        return duplicate_of
    first = np.full(int(entry.max()) + 1, len(entry), dtype=np.int64)
    np.minimum.at(first, entry[rows], rows)
    first_of_row = first[entry[rows]]
    later = first_of_row != rows
    duplicate_of[rows[later]] = first_of_row[later]
    return duplicate_of


def _group_order(sendable: npt.NDArray[np.intp], group_key: Codes) -> tuple[npt.NDArray[np.intp], list[int]]:
    """The sendable rows ordered by group, groups in order of first appearance, and where each group ends."""
    if not len(sendable):
        return sendable, []
    group_of_row = _dense(group_key[sendable])
    if group_of_row.max() < np.iinfo(np.uint16).max:
        group_of_row = group_of_row.astype(np.uint16)  # numpy sorts 16-bit keys stably by radix, in linear time
    order = sendable[np.argsort(group_of_row, kind="stable")]
    return order, np.cumsum(np.bincount(group_of_row)).tolist()


def _build_groups(
    order: npt.NDArray[np.intp],
    group_ends: list[int],
    event_ids: Strings,
    track_ids: Strings,
    statuses: Strings,
    registration_ids: Strings,
) -> tuple[RowGroup, ...]:
    """One RowGroup per (event, track, status), from the rows in group order."""
    ids = registration_ids[order]
    groups: list[RowGroup] = []
    start = 0
    for end in group_ends:
        first = order[start]
        groups.append(
            RowGroup(
                event_id=str(event_ids[first]),
                track_id=str(track_ids[first]),
                registration_status=str(statuses[first]),
                registration_ids=tuple(ids[start:end].tolist()),
                rows=tuple(order[start:end].tolist()),
            )
        )
        start = end
    return tuple(groups)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "parser error"
