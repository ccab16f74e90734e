"""The plan of a run: an input file loaded, validated, cut down by an earlier run and --limit, and batched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from batcher.errors import UsageError
from batcher.input.columnar import Strings
from batcher.input.loader import DEFAULT_OPTIONS, InputOptions, LoadedInput, load_input
from batcher.input.rows import no_target_message
from batcher.models import KNOWN_STATUSES, Batch, Outcome, RegistrationKey, RowGroup
from batcher.plan.chunker import plan_batches
from batcher.settings import Settings

if TYPE_CHECKING:
    from batcher.results.journal import Change

Registration = tuple[str, str, str]  # (event, track, registration)


@dataclass(frozen=True, slots=True)
class Plan:
    """An input file validated and cut into batches; nothing sent yet."""

    loaded: LoadedInput
    batches: tuple[Batch, ...]
    applied_before: npt.NDArray[np.int64]  # per row: HTTP status of an earlier run that applied it, 0 if none
    held_back: int = 0  # valid rows left for a later run by --limit
    limit: int | None = None
    carried_over: int = 0  # rows that succeeded in an earlier results file given as input: kept, not sent
    notices: tuple[str, ...] = ()  # about the earlier run, said at the end
    groups: tuple[RowGroup, ...] = ()  # the rows to send, before batching (after the earlier run and --limit)
    expected_status: Strings | None = None  # undo: per row, the status the run gave it (it must still have it)
    preset: tuple[Strings, Strings] | None = None  # undo: per row, an outcome and reason decided from the file

    @property
    def sendable_rows(self) -> int:
        return sum(len(batch.rows) for batch in self.batches)

    @property
    def invalid_rows(self) -> int:
        return int((self.loaded.invalid_reason != "").sum())

    @property
    def duplicate_rows(self) -> int:
        return int((self.loaded.duplicate_of >= 0).sum())

    @property
    def rows_applied_before(self) -> int:
        return int((self.applied_before > 0).sum())

    def estimated_seconds(self, settings: Settings) -> float:
        """The time the requests take at the configured pace."""
        return max(0, len(self.batches) - 1) * settings.pacing_interval_s


def prepare(
    input_path: Path,
    settings: Settings,
    *,
    default_status: str | None,
    applied: Mapping[RegistrationKey, int] | None = None,
    limit: int | None = None,
    options: InputOptions = DEFAULT_OPTIONS,
    notices: Sequence[str] = (),
) -> Plan:
    """Load, validate and batch an input file, leaving out registrations applied says are done.

    applied: what the journal of the unfinished run this one continues says it applied, with the HTTP status; given
    only when nothing is read before the PUTs (--no-snapshot): with the reads, the API's state decides.

    With limit, only the first limit rows still to send (in input order) are batched: a canary run.

    Raises:
        InputError: the file cannot be read or trusted.
        UsageError: --status is not a known status, or an input option does not fit the file.
    """
    notices = list(notices)
    loaded = load_input(input_path, default_status=default_status, options=options)
    if options.status_column is None and default_status is None and loaded.earlier is None:
        raise UsageError(no_target_message(input_path, loaded.header))
    return _batched(loaded, settings, applied, limit, notices)


@dataclass(frozen=True, slots=True)
class UndoSource:
    """What undo knows of the run it puts back: its journal's changes (None: no run of the history wrote the file)."""

    changes: Mapping[Registration, Change] | None
    resolved: Mapping[int, Registration]  # per row named by email: the registration it went to
    run_id: str = ""
    force: bool = False  # also rows the journal does not know (from the file's previous_status)


NO_PREVIOUS_STATUS = "no previous status was recorded; cannot undo"
CONFLICTING = "another row names this registration with another previous_status; not undone"


def prepare_undo(
    results_path: Path,
    settings: Settings,
    source: UndoSource,
    *,
    limit: int | None = None,
    notices: Sequence[str] = (),
) -> Plan:
    """The plan of `batcher undo` (and of `undo --dry-run`): every change the run's journal records goes back to
    its before-image.

    A row is put back when the journal says the run changed its registration: to the journal's previous status,
    and only if the registration still has the status the run set (expected_status). A row the file says was
    changed but the journal does not know is refused (invalid) unless source.force; rows naming one registration
    with different previous statuses are refused; an empty or unknown previous status is never sent. Every other
    row is settled from the file: unchanged, with the reason.

    Raises:
        InputError: the file is not a results file.
    """
    from batcher.results.file import read_results_file  # noqa: PLC0415

    results = read_results_file(results_path)
    earlier, loaded = results.earlier, results.loaded
    n = loaded.row_count
    outcome = np.char.lower(np.char.strip(earlier.outcome.astype(str)))
    said_before = np.char.upper(np.char.strip(earlier.previous_status.astype(str)))
    said_after = np.char.upper(np.char.strip(earlier.target_status.astype(str)))
    event, track, registration = (np.asarray(column, dtype=object).copy() for column in _keys(loaded))
    for row, (event_id, track_id, registration_id) in source.resolved.items():
        if 0 <= row < n and not registration[row]:
            event[row], track[row], registration[row] = event_id, track_id, registration_id
    decided = _UndoRows(n)
    seen: dict[Registration, int] = {}
    claims: dict[int, bool] = {}  # per first row of a registration: the file says the run changed it
    for row in range(n):
        key = (str(event[row]), str(track[row]), str(registration[row]))
        change = source.changes.get(key) if source.changes is not None and all(key) else None
        claimed = outcome[row] == Outcome.SUCCEEDED.value and said_before[row] != said_after[row]
        if change is None and not claimed:
            decided.leave(row, _nothing_to_undo(str(outcome[row]), str(said_before[row]), str(said_after[row])))
            continue
        if all(key) and key in seen:
            first = seen[key]
            conflict = claimed and claims[first] and said_before[row] != said_before[first]
            decided.again(row, first, loaded.row_number, conflict=bool(conflict))
            continue
        seen[key] = row
        claims[row] = bool(claimed)
        if change is not None:
            decided.put_back(row, change.previous, change.target)
        elif source.force:
            decided.put_back(row, str(said_before[row]), str(said_after[row]), forced=True)
        else:
            decided.refuse(row, _not_in_journal(source.run_id))
    said = [*notices, *_undo_notices(source, decided, len(seen), results_path)]
    undo = decided.target != ""
    undo_loaded = replace(
        loaded,
        event_id=event,
        track_id=track,
        registration_id=registration,
        registration_status=decided.target,
        invalid_reason=decided.invalid,
        duplicate_of=np.full(n, -1, dtype=np.int64),
        groups=_groups_of(event, track, registration, np.flatnonzero(undo), decided.target),
        carried_over=np.zeros(n, dtype=np.bool_),
        needs_resolution=None,
        email_address=None,
        earlier=None,
        notes=(),
        stated_status=decided.expected,  # what the run set: the --sandbox rehearsal starts from it
        stated_column="",  # not an export's column: the plan need not explain it
    )
    plan = _batched(undo_loaded, settings, None, limit, said)
    preset = np.where(decided.reason != "", Outcome.UNCHANGED.value, "").astype(object)
    return replace(plan, expected_status=decided.expected, preset=(preset, decided.reason))


def _keys(loaded: LoadedInput) -> tuple[Strings, Strings, Strings]:
    return loaded.event_id, loaded.track_id, loaded.registration_id


class _UndoRows:
    """Per row of the file, what undo decided: put back (target, expected), refused (invalid) or left (reason)."""

    def __init__(self, n: int) -> None:
        self.target = np.full(n, "", dtype=object)
        self.expected = np.full(n, "", dtype=object)
        self.invalid = np.full(n, "", dtype=object)
        self.reason = np.full(n, "", dtype=object)
        self.refused = 0
        self.forced = 0

    def leave(self, row: int, reason: str) -> None:
        self.reason[row] = reason

    def refuse(self, row: int, reason: str) -> None:
        self.target[row] = self.expected[row] = ""
        self.invalid[row] = reason
        self.refused += 1

    def put_back(self, row: int, before: str, after: str, *, forced: bool = False) -> None:
        if before not in KNOWN_STATUSES:
            self.invalid[row] = NO_PREVIOUS_STATUS
        elif before == after:
            self.leave(row, f"nothing to undo: it was {after} before the run already")
        else:
            self.target[row], self.expected[row] = before, after
            self.forced += forced

    def again(self, row: int, first: int, numbers: npt.NDArray[np.int64], *, conflict: bool) -> None:
        """A second row for a registration: refused with the first if they disagree, else left to the first."""
        if conflict:
            self.target[first] = self.expected[first] = self.reason[first] = ""
            self.invalid[first] = self.invalid[row] = CONFLICTING
            return
        self.leave(row, f"nothing to undo: it repeats row {int(numbers[first])}, undone once with that row")


def _not_in_journal(run_id: str) -> str:
    if not run_id:
        return "no run in the run history wrote this results file: not undone; --force undoes it from the file"
    return f"run {run_id}'s journal does not say it changed this registration: not undone; --force undoes it anyway"


def _undo_notices(source: UndoSource, decided: _UndoRows, named: int, path: Path) -> list[str]:
    notices: list[str] = []
    if decided.refused:
        where = f"run {source.run_id}'s journal" if source.run_id else "the run history"
        notices.append(
            f"{decided.refused} rows of {path} are changes {where} does not know: not undone "
            f"(--force puts them back from the file's previous_status)"
        )
    if decided.forced:
        notices.append(f"--force: {decided.forced} rows the journal does not know are put back from the file")
    if source.changes is not None and len(source.changes) > named:
        notices.append(
            f"{len(source.changes) - named} changes of run {source.run_id} are in no row of {path}; "
            f"'batcher undo {source.run_id}' puts back every one"
        )
    return notices


def _nothing_to_undo(outcome: str, before: str, after: str) -> str:
    if outcome == Outcome.SUCCEEDED.value and before == after:
        return f"nothing to undo: it was {after} before the run already"
    if outcome in (Outcome.UNCHANGED.value, Outcome.SKIPPED.value):
        return f"nothing to undo: the run left it {outcome}"
    return f"nothing to undo: its outcome in the run was {outcome or 'not given'}"


def _groups_of(
    event: Strings, track: Strings, registration: Strings, rows: npt.NDArray[np.intp], target: Strings
) -> tuple[RowGroup, ...]:
    """The rows by (event, track, target status), groups in order of first appearance."""
    found: dict[tuple[str, str, str], tuple[list[str], list[int]]] = {}
    for row in rows.tolist():
        key = (str(event[row]), str(track[row]), str(target[row]))
        ids, numbers = found.setdefault(key, ([], []))
        ids.append(str(registration[row]))
        numbers.append(row)
    return tuple(RowGroup(e, t, s, tuple(ids), tuple(numbers)) for (e, t, s), (ids, numbers) in found.items())


def _batched(
    loaded: LoadedInput,
    settings: Settings,
    applied: Mapping[RegistrationKey, int] | None,
    limit: int | None,
    notices: list[str],
) -> Plan:
    """The plan of loaded rows: leave out what an earlier run applied, cut to --limit, batch."""
    applied_before = np.zeros(loaded.row_count, dtype=np.int64)
    groups = list(loaded.groups)  # rows carried over from a results file given as input are in no group
    if applied:
        groups = _without_applied(groups, applied, applied_before)
    held_back = 0
    if limit is not None:
        groups, held_back = _first_rows(groups, limit)
    batches = tuple(plan_batches(groups, batch_size=settings.batch_size))
    return Plan(
        loaded, batches, applied_before, held_back, limit, loaded.carried_over_rows, tuple(notices), tuple(groups)
    )


def _first_rows(groups: list[RowGroup], limit: int) -> tuple[list[RowGroup], int]:
    """The groups cut down to the first limit rows of the input; and how many rows were left out."""
    rows = np.sort(np.fromiter((row for group in groups for row in group.rows), dtype=np.int64))
    if len(rows) <= limit:
        return groups, 0
    last = rows[limit - 1] if limit > 0 else -1
    kept: list[RowGroup] = []
    for group in groups:
        count = int(np.searchsorted(np.asarray(group.rows), last, side="right"))
        if count:
            kept.append(replace(group, registration_ids=group.registration_ids[:count], rows=group.rows[:count]))
    return kept, len(rows) - limit


def _without_applied(
    groups: Sequence[RowGroup], applied: Mapping[RegistrationKey, int], applied_before: npt.NDArray[np.int64]
) -> list[RowGroup]:
    kept: list[RowGroup] = []
    for group in groups:
        ids: list[str] = []
        rows: list[int] = []
        for registration_id, row in zip(group.registration_ids, group.rows, strict=True):
            key = (group.event_id, group.track_id, registration_id, group.registration_status)
            status = applied_before[row] or applied.get(key, 0)
            if status:
                applied_before[row] = status
            else:
                ids.append(registration_id)
                rows.append(row)
        if ids:
            kept.append(replace(group, registration_ids=tuple(ids), rows=tuple(rows)))
    return kept
