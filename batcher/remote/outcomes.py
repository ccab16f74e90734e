"""What a run's rows were before and what was settled before sending, merged from the layers that decide it:
undo's results file, the resolve stage, the reads; and the reasons of the rows left unsent."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from batcher.errors import RunStopped
from batcher.input.columnar import Strings
from batcher.models import TrackRead
from batcher.plan.planning import Plan
from batcher.remote.resolve import Resolution
from batcher.remote.snapshot import Settled, TrackKey, image
from batcher.results.journal import EarlierAttempts


def previous_status(
    plan: Plan, reads: Mapping[TrackKey, TrackRead], adopted: Mapping[int, str], earlier: EarlierAttempts
) -> Strings | None:
    """Per row, the status before the change: from this attempt's reads, except for the rows an earlier attempt of
    this run changed (adopted, or applied and not read again with --no-snapshot): their journal's before-image."""
    count = plan.loaded.row_count
    previous = image(plan.loaded.groups, reads, count).previous_status if reads else None
    applied = np.flatnonzero(plan.applied_before > 0)
    if not adopted and not len(applied):
        return previous
    previous = previous.copy() if previous is not None else np.full(count, "", dtype=object)
    for row, before in adopted.items():
        previous[row] = before
    loaded = plan.loaded
    for row in applied.tolist():
        key = (str(loaded.event_id[row]), str(loaded.track_id[row]), str(loaded.registration_id[row]))
        previous[row] = earlier.previous_of((*key, str(loaded.registration_status[row]))) or ""
    return previous


def decided(plan: Plan, settled: Settled | None, resolution: Resolution | None) -> tuple[Strings, Strings] | None:
    """The rows settled before sending: (undo) from the results file, by resolving, then by the reads."""
    layers = [plan.preset, resolution.decided if resolution is not None else None]
    layers.append((settled.outcome, settled.reason) if settled is not None else None)
    present = [layer for layer in layers if layer is not None]
    if not present:
        return None
    outcome, reason = present[0][0].copy(), present[0][1].copy()
    for more_outcome, more_reason in present[1:]:
        chosen = more_outcome != ""
        outcome[chosen], reason[chosen] = more_outcome[chosen], more_reason[chosen]
    return outcome, reason


def held_back_reason(limit: int | None) -> str:
    if limit is None:
        return "not sent"
    return f"not sent: beyond --limit {limit}; run the same command with --resume and without --limit to send it"


def pending_reason(stopped: RunStopped | None, interrupted: bool, *, declined: bool = False) -> str:
    if declined:
        return "not sent: the changes were not confirmed after the preview"
    if interrupted:
        return "not sent: the run was interrupted; re-run with --resume"
    if stopped is not None:
        return "not sent: the run stopped early; see the error message, then re-run with --resume"
    return "not sent"
