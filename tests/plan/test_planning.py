"""The plan of a run: an earlier run and --limit cut the groups once; the chunker is left for the send."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from batcher.plan.chunker import plan_batches
from batcher.plan.planning import prepare
from batcher.settings import Settings
from tests.conftest import EVENT, TRACK, WriteCsv, reg_id

HEADER = ["event_id", "track_id", "registration_id", "email"]


def mixed(write_csv: WriteCsv) -> Path:
    """Six rows: grouped ones (an ID and a track) and people-shaped ones (an email), interleaved."""
    rows = [
        [EVENT, TRACK, reg_id(0), ""],
        [EVENT, TRACK, "", "ada@example.org"],
        [EVENT, TRACK, reg_id(2), ""],
        [EVENT, TRACK, "", "alan@example.org"],
        [EVENT, TRACK, reg_id(4), ""],
        [EVENT, TRACK, "", "ken@example.org"],
    ]
    return write_csv(rows, header=HEADER)


@pytest.mark.parametrize(
    ("limit", "grouped", "waiting", "held_back"),
    [
        (None, [0, 2, 4], [1, 3, 5], 0),
        (1, [0], [], 5),
        (2, [0], [1], 4),
        (4, [0, 2], [1, 3], 2),
        (6, [0, 2, 4], [1, 3, 5], 0),
        (9, [0, 2, 4], [1, 3, 5], 0),
    ],
)
def test_limit_is_cut_once_over_the_grouped_rows_and_the_rows_to_resolve(
    write_csv: WriteCsv, settings: Settings, limit: int | None, grouped: list[int], waiting: list[int], held_back: int
) -> None:
    plan = prepare(mixed(write_csv), settings, default_status="CANCELED", limit=limit)
    assert [row for group in plan.groups for row in group.rows] == grouped
    assert plan.waiting is not None and plan.waiting.nonzero()[0].tolist() == waiting
    assert (plan.held_back, plan.sendable_rows, plan.waiting_rows) == (held_back, len(grouped), len(waiting))


@pytest.mark.parametrize("batch_size", [1, 2, 3, 500])
def test_the_requests_the_plan_shows_are_the_batches_the_chunker_cuts(
    write_csv: WriteCsv, settings: Settings, batch_size: int
) -> None:
    rows = [[EVENT, track, reg_id(n), ""] for track in ("a1", "b2") for n in range(5)]
    plan = prepare(write_csv(rows, header=HEADER), replace(settings, batch_size=batch_size), default_status="CANCELED")
    assert plan.requests == len(plan_batches(plan.groups, batch_size=batch_size)) == 2 * -(-5 // batch_size)
