"""The plan of `batcher undo` (and `undo --dry-run`): every change a run's journal records goes back to its
before-image; rows of the results file the journal does not know, or that conflict, are refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from batcher.input.columnar import Strings
from batcher.input.rows import LoadedInput
from batcher.models import KNOWN_STATUSES, Outcome, RowGroup
from batcher.plan.planning import Plan, cut_plan
from batcher.results.journal import Change, Registration
from batcher.results.reader import read_results_file
from batcher.settings import Settings
from batcher.support.words import plural


@dataclass(frozen=True, slots=True)
class UndoSource:
    """What undo knows of the run it puts back: its journal's changes (None: no run of the history wrote the file)."""

    changes: Mapping[Registration, Change] | None
    resolved: Mapping[int, Registration]  # per row named by email: the registration it went to
    run_id: str = ""
    force: bool = False  # also rows the journal does not know (from the file's previous_status)


NO_PREVIOUS_STATUS = "no previous status was recorded; cannot undo"
UNKNOWN_PREVIOUS_STATUS = (
    "the status read before the run, {status!r}, is not one of the API's statuses; batcher cannot set it back "
    "(change it by hand if you must)"
)
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
    plan = cut_plan(undo_loaded, settings, None, limit, said)
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
        if not before:
            self.invalid[row] = NO_PREVIOUS_STATUS
        elif before not in KNOWN_STATUSES:  # a status read outside the API's enum: nothing outside it is sent
            self.invalid[row] = UNKNOWN_PREVIOUS_STATUS.format(status=before)
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
            f"{plural(decided.refused, 'row')} of {path} are changes {where} does not know: not undone "
            f"(--force puts them back from the file's previous_status)"
        )
    if decided.forced:
        notices.append(f"--force: {plural(decided.forced, 'row')} the journal does not know are put back from the file")
    if source.changes is not None and len(source.changes) > named:
        notices.append(
            f"{plural(len(source.changes) - named, 'change')} of run {source.run_id} are in no row of {path}; "
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
