"""The plan of a run: an input file loaded, validated, cut down by an earlier run and --limit, and batched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from batcher.errors import UsageError
from batcher.input.columnar import Strings
from batcher.input.loader import DEFAULT_OPTIONS, InputOptions, LoadedInput, load_input
from batcher.input.rows import no_target_message
from batcher.models import KNOWN_STATUSES, Batch, Outcome, RegistrationKey, RowGroup
from batcher.plan.chunker import plan_batches
from batcher.settings import Settings


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
    resume_from: Path | None = None,
    limit: int | None = None,
    options: InputOptions = DEFAULT_OPTIONS,
) -> Plan:
    """Load, validate and batch an input file, leaving out registrations an earlier run applied.

    With resume_from, the results path of an earlier run: leave out what its journal and results say it applied.

    With limit, only the first limit rows still to send (in input order) are batched: a canary run.

    Raises:
        InputError: the file cannot be read or trusted.
        UsageError: --status is not a known status, or an input option does not fit the file.
    """
    notices: list[str] = []
    applied = None
    if resume_from is not None:
        applied = read_earlier_run(resume_from, notices=notices)
    loaded = load_input(input_path, default_status=default_status, options=options)
    if options.status_column is None and default_status is None and loaded.earlier is None:
        raise UsageError(no_target_message(input_path, loaded.header))
    return _batched(loaded, settings, applied, limit, notices)


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
    from batcher.results.file import read_results_file  # noqa: PLC0415

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
    plan = _batched(undo_loaded, settings, applied, limit, notices)
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


def read_earlier_run(results_path: Path, *, notices: list[str]) -> dict[RegistrationKey, int]:
    """What an earlier run on this results path applied, from its journal and its results file.

    With neither (the first night of a cron job that always resumes), a notice says the run starts fresh.

    Raises:
        InputError: the earlier results file cannot be read.
    """
    from batcher.results.file import read_succeeded_keys  # noqa: PLC0415
    from batcher.results.journal import journal_path, read_applied  # noqa: PLC0415

    journal = journal_path(results_path)
    if not journal.exists() and not results_path.exists():
        notices.append(f"nothing to resume (neither {journal} nor {results_path} exists); starting fresh")
        return {}
    applied: dict[RegistrationKey, int] = {}
    if results_path.exists():
        applied.update(read_succeeded_keys(results_path, default_status=None))  # each row's target_status
    if journal.exists():
        applied.update(read_applied(journal))
    return applied


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
