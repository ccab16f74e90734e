"""What a resumed attempt keeps of the earlier attempts of its run, and what the journal learns from resolving.

`adopt`: a registration an earlier attempt of this (unfinished) run sent, that the reads now find at its target,
is this run's change (succeeded, with the earlier before-image); any other row at its target is unchanged.
`journal_resolved`: the registration each row named by email went to, so that verify and undo find it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from batcher.input.columnar import Strings
from batcher.input.loader import LoadedInput
from batcher.models import Outcome, RowGroup
from batcher.remote.resolve import Resolution
from batcher.remote.snapshot import Settled
from batcher.results.journal import EarlierAttempts, Journal


def journal_resolved(journal: Journal, loaded: LoadedInput, resolution: Resolution) -> None:
    """The registration each row named by email (or without a track) went to: verify and undo find it there."""
    needs = loaded.needs_resolution
    if needs is None:
        return
    rows = np.flatnonzero(needs & (resolution.outcome == "") & (resolution.registration_id != "")).tolist()
    if rows:
        journal.record_resolved(
            rows,
            [
                (str(loaded.event_id[row]), str(resolution.track_id[row]), str(resolution.registration_id[row]))
                for row in rows
            ],
        )


def adopt(
    journal: Journal, earlier: EarlierAttempts, groups: Sequence[RowGroup], now: Strings, settled: Settled
) -> dict[int, str]:
    """Rows the reads find at their target that an earlier attempt of this run sent: succeeded, this run's change.

    Every other row at its target stays unchanged: the journal never makes a registration that is elsewhere now
    succeeded, and an earlier, finished run's journal is never read.
    """
    adopted: dict[int, str] = {}
    if not earlier.intents and not earlier.changes:
        return adopted
    for group in groups:
        ids: list[str] = []
        rows: list[int] = []
        befores: list[str] = []
        for registration_id, row in zip(group.registration_ids, group.rows, strict=True):
            if settled.outcome[row] != Outcome.UNCHANGED.value or now[row] != group.registration_status:
                continue
            key = (group.event_id, group.track_id, registration_id, group.registration_status)
            before = earlier.previous_of(key)
            if before and before != group.registration_status:
                ids.append(registration_id)
                rows.append(row)
                befores.append(before)
        if ids:
            journal.record_adopted(replace(group, registration_ids=tuple(ids), rows=tuple(rows)), befores)
            for row, before in zip(rows, befores, strict=True):
                settled.outcome[row], settled.reason[row] = Outcome.SUCCEEDED.value, ""
                adopted[row] = before
    return adopted
