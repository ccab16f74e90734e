"""Checks the key columns of an input (event, track, registration, status) and finds conflicts, repeats and groups.

Column-wise on the pyarrow columns loader.py has read: each check runs once per distinct value, and rows are
compared, deduplicated and grouped by integer codes. It reads no file and raises no error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from batcher.models import KNOWN_STATUSES, RowGroup

STATUS_ALIASES = {"CANCELLED": "CANCELED"}
UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
TRACK_PATTERN = r"[A-Za-z0-9]{1,64}"
CONTROL_CHARS = r"[\x00-\x1f\x7f-\x9f]"
CONFLICT_REASON = "this registration is asked to take more than one status in this file; keep only the one you mean"
QUOTED_CHARS = 80  # a reason quotes at most this much of the cell
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
class CheckedRows:
    """The verdict on every row: API forms of its keys, why it cannot be sent, what it repeats, and the groups."""

    event_id: Strings  # normalized, API form
    track_id: Strings
    registration_id: Strings
    registration_status: Strings
    invalid_reason: Strings  # "" for a valid row
    duplicate_of: Codes  # input row index of the first copy, -1 if none
    groups: tuple[RowGroup, ...]
    aliased: int  # rows whose status was an accepted misspelling ("Cancelled")


def check_rows(
    event: pa.ChunkedArray,
    track: pa.ChunkedArray,
    registration: pa.ChunkedArray,
    status: pa.ChunkedArray | None,
    *,
    default: str | None,
) -> CheckedRows:
    """Check the key columns (status None: no status column), mark conflicts and repeats, group the rest.

    A row's reason is its first failed check, in the order event, track, registration, status; a row asked to
    take two statuses is a conflict; an exact repeat of a valid row is a duplicate of its first copy; the other
    valid rows are grouped by (event, track, status), groups in order of first appearance.
    """
    row_count = len(event)
    if status is None:
        status = pa.chunked_array([pa.repeat(pa.scalar("", pa.string()), row_count)])
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        registration_column = _encode(registration)
        # the longest checks first: registration IDs are distinct as a rule, and proving it beats coding them
        registration_task = pool.submit(_check_uuid, registration_column.distinct, "registration_id", codes=False)
        distinct_task = pool.submit(_surely_distinct, registration_column.distinct)
        event_task = pool.submit(_encode_and_check, event, partial(_check_uuid, name="event_id"))
        track_task = pool.submit(_encode_and_check, track, _check_track)
        status_task = pool.submit(_encode_and_check, status, partial(_check_status, default=default))
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
    event_key = _Key.of(event_column, event_checked)
    track_key = _Key.of(track_column, track_checked)
    registration_key = _Key.of(registration_column, registration_checked)
    status_key = _Key.of(status_column, status_checked)

    reasons, valid = _row_reasons(row_count, (event_key, track_key, registration_key, status_key))
    event_track = _combine(event_key.codes(), track_key.codes())
    status_code = status_key.codes()
    duplicate_of = np.full(row_count, -1, dtype=np.int64)
    if not (registration_column.index is None and registration_checked.distinct):  # else no row repeats another
        registration_code = registration_key.codes()
        if np.bincount(registration_code[valid]).max(initial=0) > 1:
            entry = _dense(_combine(event_track, registration_code))
            _mark_conflicts(reasons, valid, entry, status_code)
            duplicate_of = _find_duplicates(entry, valid)
    sendable = np.flatnonzero(valid & (duplicate_of < 0))
    order, group_ends = _group_order(sendable, _combine(event_track, status_code))

    registration_ids = registration_key.normalized(registration_objects)
    event_ids = event_key.normalized(_strings(event_column.distinct))
    track_ids = track_key.normalized(_strings(track_column.distinct))
    statuses = status_key.normalized(_strings(status_column.distinct))
    aliased = 0
    if status_checked.aliased is not None:
        aliased = int(np.count_nonzero(status_column.per_row(status_checked.aliased)))
    return CheckedRows(
        event_id=event_ids,
        track_id=track_ids,
        registration_id=registration_ids,
        registration_status=statuses,
        invalid_reason=reasons,
        duplicate_of=duplicate_of,
        groups=_build_groups(order, group_ends, event_ids, track_ids, statuses, registration_ids),
        aliased=aliased,
    )


class Columns(Sequence[Strings]):
    """An input's columns as written, each made into an array of Python strings when first used.

    `plan` never needs them, and a column of a million strings costs a tenth of a second and tens of megabytes.
    Indexing, negative indexes, slices, iteration and len() behave as on a tuple of arrays.
    """

    __slots__ = ("_columns", "_made")

    def __init__(self, columns: Sequence[pa.ChunkedArray]) -> None:
        self._columns = list(columns)
        self._made: dict[int, Strings] = {}

    def __len__(self) -> int:
        return len(self._columns)

    @overload
    def __getitem__(self, index: int) -> Strings: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Strings, ...]: ...

    def __getitem__(self, index: int | slice) -> Strings | tuple[Strings, ...]:
        if isinstance(index, slice):
            return tuple(self[position] for position in range(len(self))[index])
        position = range(len(self))[index]  # negative indexes; IndexError past the end
        if position not in self._made:
            self._made[position] = written(self._columns[position])
        return self._made[position]

    def __repr__(self) -> str:
        return f"<{len(self)} input columns, {len(self._made)} made>"

    def arrow(self, position: int) -> pa.ChunkedArray:
        """A column as pyarrow holds it, for writers that never need Python strings."""
        return self._columns[position]


def written(values: pa.ChunkedArray) -> Strings:
    """Every row's value as written, as Python strings; equal values of a repetitive column share one string."""
    column = _encode(values)
    return np.asarray(column.per_row(_strings(column.distinct)), dtype=object)


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
    suffix is None) by the value as written, quoted, cut to 80 characters, control characters shown as U+FFFD,
    and the suffix."""

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
            quoted = pc.utf8_slice_codeunits(column.distinct.take(pa.array(where)), 0, QUOTED_CHARS)
            quoted = pc.replace_substring_regex(quoted, CONTROL_CHARS, "\ufffd")
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


def _encode_and_check(
    values: pa.ChunkedArray, check: Callable[[pa.ChunkedArray], _Checked]
) -> tuple[_Column, _Checked]:
    column = _encode(values)
    return column, check(column.distinct)


def _encode(values: pa.ChunkedArray) -> _Column:
    sample = values.slice(0, _SAMPLE_ROWS)
    if pc.count_distinct(sample).as_py() > _DISTINCT_SHARE * len(sample):
        return _Column(values, None)
    encoded = values.dictionary_encode().combine_chunks()  # the chunks share one dictionary
    return _Column(pa.chunked_array([encoded.dictionary], type=values.type), _indices(encoded))


def _strings(values: pa.ChunkedArray) -> Strings:
    # not to_numpy(): its first call imports pandas, a third of a second that `plan` need not pay
    strings = np.empty(len(values), dtype=object)
    strings[:] = values.to_pylist()
    return strings


# The helpers below read pyarrow's buffers with numpy: to_numpy() would import pandas (see _strings).


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


def byte_lengths(values: pa.ChunkedArray) -> npt.NDArray[np.int32]:
    """The length of each string in bytes (of UTF-8), from the offsets."""
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
    empty = byte_lengths(normalized) == 0
    not_uuid = ~_fullmatch(normalized, UUID_PATTERN)
    checks = [(empty, f"{name} is empty", None), (not_uuid, f"{name} is not a UUID: ", "")]
    return _checked(raw, normalized, checks, codes=codes)


def _check_track(raw: pa.ChunkedArray) -> _Checked:
    normalized = pc.utf8_trim_whitespace(raw)
    empty = byte_lengths(normalized) == 0
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
