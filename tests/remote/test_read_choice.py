"""The choice between listing a track and one GET per registration, and the bound it keeps."""

from __future__ import annotations

import math

import pytest

from batcher.remote.reads import next_step, read_bound


@pytest.mark.parametrize(
    ("missing", "records_left", "page_size", "has_next", "expected"),
    [
        (0, 500, 50, True, "done"),  # every id found: no more reads
        (3, 500, 50, False, "done"),  # the list is whole: the missing ids do not exist
        (3, 500, 50, True, "get"),  # 10 more pages, or 3 GETs
        (20, 500, 50, True, "list"),  # 10 more pages beat 20 GETs
        (10, 500, 50, True, "list"),  # a tie lists: a page may also find ids for later rows
        (5, None, 50, True, "get"),  # no total: listing might never end
        (5, 40, 0, True, "get"),  # an empty page with a cursor says nothing of the page size
    ],
)
def test_next_step(missing: int, records_left: int | None, page_size: int, has_next: bool, expected: str) -> None:
    assert next_step(missing=missing, records_left=records_left, page_size=page_size, has_next=has_next) == expected


@pytest.mark.parametrize("total", [1, 49, 50, 51, 1234])
@pytest.mark.parametrize("rows", [2, 5, 30, 200])
def test_the_choice_never_costs_more_than_the_bound(total: int, rows: int) -> None:
    """Simulate a server of page size 50 whose wanted ids sit at the end of the list (the worst case)."""
    page_size = 50
    pages = math.ceil(total / page_size)
    wanted = min(rows, total)
    requests, seen = 1, min(page_size, total)
    found = max(0, wanted - (total - seen))
    while True:
        step = next_step(missing=wanted - found, records_left=total - seen, page_size=page_size, has_next=seen < total)
        if step == "done":
            break
        if step == "get":
            requests += wanted - found
            break
        requests += 1
        seen = min(total, seen + page_size)
        found = max(0, wanted - (total - seen))
    assert requests <= 1 + min(pages - 1, wanted)
    assert requests <= read_bound(wanted)
