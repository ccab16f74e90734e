"""The plan of `batcher undo`: every row a run changed goes back to its previous status, read from its results."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from batcher.input.columnar import Strings
from batcher.input.rows import LoadedInput
from batcher.models import KNOWN_STATUSES, Outcome, RowGroup
from batcher.plan.planning import Plan, cut_plan, read_earlier_run
from batcher.results.reader import read_results_file
from batcher.settings import Settings


def prepare_undo(
    results_path: Path, settings: Settings, *, resume_from: Path | None = None, limit: int | None = None
) -> Plan:
    """The plan of `batcher undo`: every row the run changed goes back to its previous_status.

    A row changed (succeeded, with a previous_status known and other than its target_status) is to be set to
    previous_status, and must still have target_status (expected_status); every other row is settled from the
    file: unchanged (nothing to undo, with the reason) or invalid (changed, but no previous status was recorded).

    Raises:
        InputError: the file is not a results file.
    """
    notices: list[str] = []
    applied = read_earlier_run(resume_from, notices=notices) if resume_from is not None else None
    results = read_results_file(results_path)
    earlier, loaded = results.earlier, results.loaded
    outcome = np.char.lower(np.char.strip(earlier.outcome.astype(str)))
    before = np.char.upper(np.char.strip(earlier.previous_status.astype(str)))
    after = np.char.upper(np.char.strip(earlier.target_status.astype(str)))
    succeeded = (outcome == Outcome.SUCCEEDED.value) & (loaded.invalid_reason == "")
    changed = succeeded & (before != after)
    # a status the read returned that is not in the API's enum is unknown: nothing outside the enum is ever sent
    unknown = changed & (before != "") & ~np.isin(before, KNOWN_STATUSES)
    undo = changed & (before != "") & ~unknown
    n = loaded.row_count
    invalid = np.where(changed & (before == ""), NO_PREVIOUS_STATUS, "").astype(object)
    invalid[unknown] = [UNKNOWN_PREVIOUS_STATUS.format(status=status) for status in before[unknown].tolist()]
    reason = np.full(n, "", dtype=object)
    reason[~changed] = [
        _nothing_to_undo(word, was, now)
        for word, was, now in zip(
            outcome[~changed].tolist(), before[~changed].tolist(), after[~changed].tolist(), strict=True
        )
    ]
    preset = np.where(changed, "", Outcome.UNCHANGED.value).astype(object)
    target = np.where(undo, before, "").astype(object)
    undo_loaded = replace(
        loaded,
        registration_status=target,
        invalid_reason=invalid,
        duplicate_of=np.full(n, -1, dtype=np.int64),
        groups=_groups_of(loaded, np.flatnonzero(undo), target),
        carried_over=np.zeros(n, dtype=np.bool_),
        earlier=None,
        notes=(),
        stated_status=after.astype(object),  # what the run set: the --sandbox rehearsal starts from it
        stated_column="",  # not an export's column: the plan need not explain it
    )
    plan = cut_plan(undo_loaded, settings, applied, limit, notices)
    return replace(plan, expected_status=after.astype(object), preset=(preset, reason))


NO_PREVIOUS_STATUS = "no previous status was recorded; cannot undo"
UNKNOWN_PREVIOUS_STATUS = (
    "the status read before the run, {status!r}, is not one of the API's statuses; batcher cannot set it back "
    "(change it by hand if you must)"
)


def _nothing_to_undo(outcome: str, before: str, after: str) -> str:
    if outcome == Outcome.SUCCEEDED.value and before == after:
        return f"nothing to undo: it was {after} before the run already"
    if outcome in (Outcome.UNCHANGED.value, Outcome.SKIPPED.value):
        return f"nothing to undo: the run left it {outcome}"
    return f"nothing to undo: its outcome in the run was {outcome or 'not given'}"


def _groups_of(loaded: LoadedInput, rows: npt.NDArray[np.intp], target: Strings) -> tuple[RowGroup, ...]:
    """The rows by (event, track, target status), groups in order of first appearance."""
    found: dict[tuple[str, str, str], tuple[list[str], list[int]]] = {}
    for row in rows.tolist():
        key = (str(loaded.event_id[row]), str(loaded.track_id[row]), str(target[row]))
        ids, numbers = found.setdefault(key, ([], []))
        ids.append(str(loaded.registration_id[row]))
        numbers.append(row)
    return tuple(RowGroup(e, t, s, tuple(ids), tuple(numbers)) for (e, t, s), (ids, numbers) in found.items())
