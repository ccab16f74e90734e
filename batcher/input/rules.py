"""The row rules: checks of the key columns (event, track, registration, status), conflicts, repeats and groups.

Column-wise on the pyarrow columns the input table holds: each check runs once per distinct value, and rows are
compared, deduplicated and grouped by integer codes (see columnar.py). It reads no file and raises no error.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from batcher.input.columnar import (
    Codes,
    Column,
    Flags,
    Strings,
    byte_lengths,
    codes_of,
    combine,
    dense,
    encode,
    flags,
    fullmatch,
    strings,
    surely_distinct,
)
from batcher.models import KNOWN_STATUSES, STATUS_ALIASES, RowGroup

UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
TRACK_PATTERN = r"[A-Za-z0-9]{1,64}"
# control characters, and the bidirectional controls that can make a message read backwards
CONTROL_CHARS = "[\\x00-\\x1f\\x7f-\\x9f\u202a-\u202e\u2066-\u2069]"  # bidi ones as characters: RE2 too
CONFLICT_REASON = "this registration is asked to take more than one status in this file; keep only the one you mean"
NO_KEY_REASON = "registration_id and email_address are both empty; give one of them"
QUOTED_CHARS = 80  # a reason quotes at most this much of the cell
_WORKERS = 2


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
    # people-shaped rows (an email, or no track): valid so far, in no group until resolve.py has read them
    needs_resolution: Flags | None = None  # None: no row needs it
    email_address: Strings | None = None  # per row that waits, lower case and trimmed ("" elsewhere); None: none


def check_rows(
    event: pa.ChunkedArray,
    track: pa.ChunkedArray,
    registration: pa.ChunkedArray,
    status: pa.ChunkedArray | None,
    *,
    default: str | None,
    held: Flags | None = None,
    email: pa.ChunkedArray | None = None,
) -> CheckedRows:
    """Check the key columns (status None: no status column), mark conflicts and repeats, group the rest.

    A row's reason is its first failed check, in the order event, track, registration, status; a row asked to
    take two statuses is a conflict; an exact repeat of a valid row is a duplicate of its first copy; the other
    valid rows are grouped by (event, track, status), groups in order of first appearance. Rows marked in held
    (carried over from an earlier run) are checked like the others but put in no group.

    People-shaped rows (see people_rows): an empty track, or an email (column email, None: none), keeps a valid
    row out of the groups, duplicates and conflicts until its registration is resolved.
    """
    row_count = len(event)
    if status is None:
        status = pa.chunked_array([pa.repeat(pa.scalar("", pa.string()), row_count)])
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        registration_column = encode(registration)
        # the longest checks first: registration IDs are distinct as a rule, and proving it beats coding them
        registration_task = pool.submit(
            _check_uuid, registration_column.distinct, "registration_id", codes=False, allow_empty=email is not None
        )
        distinct_task = pool.submit(surely_distinct, registration_column.distinct)
        event_task = pool.submit(_encode_and_check, event, partial(_check_uuid, name="event_id"))
        track_task = pool.submit(_encode_and_check, track, _check_track)
        status_task = pool.submit(_encode_and_check, status, partial(_check_status, default=default))
        registration_objects = strings(registration_column.distinct)
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

    keys = (event_key, track_key, registration_key, status_key)
    reasons, valid = _row_reasons(row_count, keys)
    needs, email_ids = people_rows(reasons, valid, track_key, registration_key, email)
    event_track = combine(event_key.codes(), track_key.codes())
    status_code = status_key.codes()
    duplicate_of = np.full(row_count, -1, dtype=np.int64)
    if not (registration_column.index is None and registration_checked.distinct):  # else no row repeats another
        registration_code = registration_key.codes()
        if np.bincount(registration_code[valid]).max(initial=0) > 1:
            entry = dense(combine(event_track, registration_code))
            _mark_conflicts(reasons, valid, entry, status_code)
            duplicate_of = _find_duplicates(entry, valid)
    sendable = np.flatnonzero(valid & (duplicate_of < 0) & (True if held is None else ~held))
    order, group_ends = _group_order(sendable, combine(event_track, status_code))

    registration_ids = registration_key.normalized(registration_objects)
    event_ids = event_key.normalized(strings(event_column.distinct))
    track_ids = track_key.normalized(strings(track_column.distinct))
    statuses = status_key.normalized(strings(status_column.distinct))
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
        needs_resolution=needs,
        email_address=email_ids,
    )


def people_rows(
    reasons: Strings, valid: Flags, track: _Key, registration: _Key, email: pa.ChunkedArray | None
) -> tuple[Flags | None, Strings | None]:
    """Which valid rows wait for resolve.py (an email, or an empty track), and their emails; they leave valid.

    Only rows without a track or an ID have their email checked here (a bad one is invalid before any read); one
    with neither ID nor email is invalid. A row with an ID and a track is grouped as usual: its email, if any, is
    checked against the registration the reads find (resolve.email_mismatches). (None, None): no row waits.
    """
    open_rows = _per_row(track, byte_lengths(track.checked.normalized) == 0)
    if email is not None:
        open_rows |= _per_row(registration, byte_lengths(registration.checked.normalized) == 0)
    rows = np.flatnonzero(open_rows & valid)
    if not len(rows):
        return None, None
    emails = np.full(len(valid), "", dtype=object)
    if email is not None:
        cells = email.take(pa.array(rows))
        key = _Key.of(Column(cells, None), _check_email(cells))
        bad = np.flatnonzero(key.invalid)
        reasons[rows[bad]] = key.reason[bad]
        valid[rows[bad]] = False
        emails[rows] = strings(key.checked.normalized)
        neither = rows[(emails[rows] == "") & registration.normalized_empty(rows)]
        neither = neither[valid[neither]]
        reasons[neither] = NO_KEY_REASON
        valid[neither] = False
    needs = np.zeros(len(valid), dtype=np.bool_)
    needs[rows] = valid[rows]
    if not needs.any():
        return None, None
    valid[needs] = False
    emails[~needs] = ""
    return needs, emails if email is not None else None


def _per_row(key: _Key, per_value: Flags) -> Flags:
    return np.asarray(key.column.per_row(per_value), dtype=np.bool_)


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

    column: Column
    checked: _Checked
    code: Codes  # per distinct value
    invalid: Flags
    reason: Strings  # "" where valid

    @classmethod
    def of(cls, column: Column, checked: _Checked) -> _Key:
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
            reason[where] = strings(pc.binary_join_element_wise(message + '"', quoted, '"' + suffix, ""))
        code = checked.code if checked.code is not None else codes_of(checked.normalized)
        return cls(column, checked, code, invalid, reason)

    def normalized_empty(self, rows: npt.NDArray[np.intp]) -> Flags:
        """Per row of rows, whether the API form is empty."""
        empty = byte_lengths(self.checked.normalized) == 0
        return np.asarray(empty[rows if self.column.index is None else self.column.index[rows]], dtype=np.bool_)

    def codes(self) -> Codes:
        return np.asarray(self.column.per_row(self.code), dtype=np.int64)

    def normalized(self, distinct_objects: Strings) -> Strings:
        """Per row, the API form, given the distinct values as Python strings; equal values share a string."""
        normalized = distinct_objects.copy()
        changed = np.flatnonzero(~self.checked.unchanged)
        if len(changed):
            normalized[changed] = strings(self.checked.normalized.take(pa.array(changed)))
        return np.asarray(self.column.per_row(normalized), dtype=object)


def _encode_and_check(values: pa.ChunkedArray, check: Callable[[pa.ChunkedArray], _Checked]) -> tuple[Column, _Checked]:
    column = encode(values)
    return column, check(column.distinct)


def _checked(
    raw: pa.ChunkedArray,
    normalized: pa.ChunkedArray,
    checks: list[tuple[Flags, str, str | None]],
    *,
    codes: bool = True,
    aliased: Flags | None = None,
) -> _Checked:
    unchanged = flags(pc.equal(raw, normalized))
    return _Checked(normalized, unchanged, codes_of(normalized) if codes else None, checks, aliased)


def _check_uuid(raw: pa.ChunkedArray, name: str, *, codes: bool = True, allow_empty: bool = False) -> _Checked:
    normalized = pc.utf8_lower(pc.utf8_trim_whitespace(raw))
    empty = byte_lengths(normalized) == 0
    not_uuid = ~fullmatch(normalized, UUID_PATTERN)
    if allow_empty:
        not_uuid &= ~empty
        empty[:] = False
    checks = [(empty, f"{name} is empty", None), (not_uuid, f"{name} is not a UUID: ", "")]
    return _checked(raw, normalized, checks, codes=codes)


def _check_track(raw: pa.ChunkedArray) -> _Checked:
    """An empty track is no error: the row takes its event's default track (people_rows)."""
    normalized = pc.utf8_trim_whitespace(raw)
    unsafe = ~fullmatch(normalized, TRACK_PATTERN) & (byte_lengths(normalized) > 0)
    return _checked(raw, normalized, [(unsafe, "track_id may hold only letters and digits: ", "")])


def _check_email(raw: pa.ChunkedArray) -> _Checked:
    """An email is matched ignoring case and surrounding spaces; empty is no error (the row has an ID)."""
    normalized = pc.utf8_lower(pc.utf8_trim_whitespace(raw))
    control = flags(pc.match_substring_regex(normalized, CONTROL_CHARS))
    not_email = ~flags(pc.match_substring(normalized, "@")) & (byte_lengths(normalized) > 0)
    checks: list[tuple[Flags, str, str | None]] = [
        (control, "email_address holds control characters: ", ""),
        (not_email, "email_address is not an email address (no @): ", ""),
    ]
    return replace(_checked(raw, normalized, checks, codes=False), code=np.zeros(0, dtype=np.int64))  # no codes


def _check_status(raw: pa.ChunkedArray, default: str | None) -> _Checked:
    upper = pc.utf8_upper(pc.utf8_trim_whitespace(raw))
    status = upper
    for alias, status_name in STATUS_ALIASES.items():
        status = pc.if_else(pc.equal(status, alias), status_name, status)
    if default is not None:
        status = pc.if_else(pc.equal(status, ""), default, status)
    aliased = flags(pc.and_(pc.not_equal(upper, status), pc.not_equal(upper, "")))
    missing = flags(pc.equal(status, ""))
    unknown = ~flags(pc.is_in(status, value_set=pa.array(KNOWN_STATUSES)))
    checks = [
        (missing, "no target status in this row's status column, and no --status given", None),
        (unknown, "unknown registration_status ", "; use one of " + ", ".join(KNOWN_STATUSES)),
    ]
    return _checked(raw, status, checks, aliased=aliased)


def stated_statuses(column: pa.ChunkedArray) -> Strings:
    """Per row, a current-status column's value upper-cased, "Cancelled" as CANCELED ("" where empty)."""
    status = pc.utf8_upper(pc.utf8_trim_whitespace(column))
    for alias, status_name in STATUS_ALIASES.items():
        status = pc.if_else(pc.equal(status, alias), status_name, status)
    return strings(status)


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
    group_of_row = dense(group_key[sendable])
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
