"""Batches from groups: full batches, numbering, input order."""

from __future__ import annotations

import pytest

from batcher.models import RowGroup
from batcher.plan.chunker import count_requests, plan_batches


def group(size: int, event: str = "e", track: str = "t", offset: int = 0) -> RowGroup:
    ids = tuple(f"id-{offset + n}" for n in range(size))
    return RowGroup(event, track, "CANCELED", ids, tuple(range(offset, offset + size)))


@pytest.mark.parametrize(
    ("size", "batch_size", "expected"), [(1, 100, [1]), (100, 100, [100]), (250, 100, [100, 100, 50])]
)
def test_only_the_last_batch_of_a_group_is_partly_filled(size: int, batch_size: int, expected: list[int]) -> None:
    batches = plan_batches([group(size)], batch_size=batch_size)
    assert [len(batch.registration_ids) for batch in batches] == expected


def test_batches_are_numbered_from_one_across_groups_and_keep_input_order() -> None:
    batches = plan_batches([group(3, track="a"), group(2, track="b", offset=3)], batch_size=2)
    assert [batch.number for batch in batches] == [1, 2, 3]
    assert [batch.group for batch in batches] == [0, 0, 1]
    assert batches[0].registration_ids == ("id-0", "id-1")
    assert batches[1].rows == (2,)
    assert batches[2].track_id == "b"


def test_request_count_is_sum_of_ceilings() -> None:
    groups = [group(1), group(100), group(101), group(250)]
    assert count_requests(groups, batch_size=100) == 1 + 1 + 2 + 3
    assert len(plan_batches(groups, batch_size=100)) == 7


def test_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        plan_batches([group(1)], batch_size=0)
