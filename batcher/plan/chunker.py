"""Splits each group's registrations into numbered, request-sized batches. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence

from batcher.models import Batch, RowGroup


def plan_batches(groups: Sequence[RowGroup], *, batch_size: int) -> list[Batch]:
    """Full batches of at most batch_size ids; only each group's last batch may be partly filled."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    batches: list[Batch] = []
    for group_index, group in enumerate(groups):
        for start in range(0, len(group.registration_ids), batch_size):
            batches.append(
                Batch(
                    number=len(batches) + 1,
                    group=group_index,
                    event_id=group.event_id,
                    track_id=group.track_id,
                    registration_status=group.registration_status,
                    registration_ids=group.registration_ids[start : start + batch_size],
                    rows=group.rows[start : start + batch_size],
                )
            )
    return batches


def count_requests(groups: Sequence[RowGroup], *, batch_size: int) -> int:
    """The optimal number of PUTs: the sum over groups of ceil(ids / batch_size)."""
    return sum(-(-len(group.registration_ids) // batch_size) for group in groups)
