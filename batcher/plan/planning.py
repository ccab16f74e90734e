"""The plan of a run: an input file loaded, validated, and cut down by an earlier run and --limit (the one cut)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from batcher.errors import UsageError
from batcher.input.columnar import Flags, Strings
from batcher.input.loader import DEFAULT_OPTIONS, InputOptions, LoadedInput, load_input
from batcher.input.rows import no_target_message
from batcher.models import RegistrationKey, RowGroup
from batcher.plan.chunker import count_requests
from batcher.settings import Settings


@dataclass(frozen=True, slots=True)
class Plan:
    """An input file validated and cut down by an earlier run and --limit; nothing sent yet.

    The plan holds groups, not batches: the chunker cuts the batches once, when the run sends, after resolving and
    reading have settled which rows are really sent.
    """

    loaded: LoadedInput
    groups: tuple[RowGroup, ...]  # the rows to send (after the earlier run and --limit), by event, track and status
    applied_before: npt.NDArray[np.int64]  # per row: HTTP status of an earlier run that applied it, 0 if none
    batch_size: int
    held_back: int = 0  # valid rows left for a later run by --limit
    limit: int | None = None
    carried_over: int = 0  # rows that succeeded in an earlier results file given as input: kept, not sent
    notices: tuple[str, ...] = ()  # about the earlier run, said at the end
    waiting: Flags | None = None  # people-shaped rows to resolve when run (within --limit); None: no row needs it
    expected_status: Strings | None = None  # undo: per row, the status the run gave it (it must still have it)
    preset: tuple[Strings, Strings] | None = None  # undo: per row, an outcome and reason decided from the file

    @property
    def sendable_rows(self) -> int:
        return sum(len(group.rows) for group in self.groups)

    @property
    def waiting_rows(self) -> int:
        """Rows sent once resolved (people-shaped input), within --limit."""
        return 0 if self.waiting is None else int(self.waiting.sum())

    @property
    def requests(self) -> int:
        """The PUTs the groups take at most (reads may settle some rows first; resolved rows add theirs)."""
        return count_requests(self.groups, batch_size=self.batch_size)

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
        return max(0, self.requests - 1) * settings.pacing_interval_s


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
    """Load, validate and plan an input file, leaving out registrations applied says are done.

    applied: what the journal of the unfinished run this one continues says it applied, with the HTTP status; given
    only when nothing is read before the PUTs (--no-snapshot): with the reads, the API's state decides.

    With limit, only the first limit rows still to send (in input order, people-shaped rows to resolve included)
    are planned: a canary run.

    Raises:
        InputError: the file cannot be read or trusted.
        UsageError: --status is not a known status, or an input option does not fit the file.
    """
    loaded = load_input(input_path, default_status=default_status, options=options)
    if options.status_column is None and default_status is None and loaded.earlier is None:
        raise UsageError(no_target_message(input_path, loaded.header))
    return cut_plan(loaded, settings, applied, limit, list(notices))


def cut_plan(
    loaded: LoadedInput,
    settings: Settings,
    applied: Mapping[RegistrationKey, int] | None,
    limit: int | None,
    notices: list[str],
) -> Plan:
    """The plan of loaded rows: leave out what an earlier run applied, then cut to --limit (the one cut)."""
    applied_before = np.zeros(loaded.row_count, dtype=np.int64)
    groups = list(loaded.groups)  # rows carried over from a results file given as input are in no group
    if applied:
        groups = _without_applied(groups, applied, applied_before)
    waiting = None
    if loaded.needs_resolution is not None:
        waiting = loaded.needs_resolution & ~loaded.carried_over & (loaded.invalid_reason == "")
    held_back = 0
    if limit is not None:
        groups, waiting, held_back = _first_rows(groups, waiting, limit)
    return Plan(
        loaded,
        tuple(groups),
        applied_before,
        settings.batch_size,
        held_back,
        limit,
        loaded.carried_over_rows,
        tuple(notices),
        waiting,
    )


def _first_rows(groups: list[RowGroup], waiting: Flags | None, limit: int) -> tuple[list[RowGroup], Flags | None, int]:
    """The groups and the rows to resolve cut down to the first limit rows of the input; and how many rows were
    left out."""
    grouped = np.fromiter((row for group in groups for row in group.rows), dtype=np.int64)
    resolving = np.flatnonzero(waiting) if waiting is not None else np.zeros(0, dtype=np.int64)
    rows = np.sort(np.concatenate([grouped, resolving]))
    if len(rows) <= limit:
        return groups, waiting, 0
    last = rows[limit - 1] if limit > 0 else -1
    kept: list[RowGroup] = []
    for group in groups:
        count = int(np.searchsorted(np.asarray(group.rows), last, side="right"))
        if count:
            kept.append(replace(group, registration_ids=group.registration_ids[:count], rows=group.rows[:count]))
    if waiting is not None:
        waiting = waiting & (np.arange(len(waiting)) <= last)
    return kept, waiting, len(rows) - limit


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
