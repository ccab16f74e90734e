"""Merging rows and batch results into one outcome per row (the results file: tests/results/test_writer.py)."""

from __future__ import annotations

from dataclasses import replace

from batcher.input.loader import LoadedInput, load_input
from batcher.models import BatchResult
from batcher.plan.chunker import plan_batches
from batcher.plan.reconciler import REJECTED_IN_207, all_succeeded, reconcile
from tests.conftest import EVENT, TRACK, WriteCsv, reg_id


def load(write_csv: WriteCsv, rows: list[list[str]]) -> LoadedInput:
    return load_input(write_csv(rows), default_status="CANCELED")


def test_200_marks_every_row_of_the_batch_succeeded(write_csv: WriteCsv) -> None:
    loaded = load(write_csv, [[EVENT, TRACK, reg_id(n), ""] for n in range(3)])
    batches = plan_batches(loaded.groups, batch_size=2)
    rows = reconcile(loaded, batches, [BatchResult(1, 200), BatchResult(2, 200)])
    assert rows.outcome.tolist() == ["succeeded"] * 3
    assert rows.batch.tolist() == [1, 1, 2]
    assert all_succeeded(loaded, rows)


def test_207_marks_only_listed_ids_failed(write_csv: WriteCsv) -> None:
    loaded = load(write_csv, [[EVENT, TRACK, reg_id(n), ""] for n in range(3)])
    batches = plan_batches(loaded.groups, batch_size=100)
    rows = reconcile(loaded, batches, [BatchResult(1, 207, frozenset({reg_id(1)}))])
    assert rows.outcome.tolist() == ["succeeded", "failed", "succeeded"]
    assert rows.error.tolist() == ["", REJECTED_IN_207, ""]
    assert not all_succeeded(loaded, rows)


def test_failed_batch_fails_every_row_with_its_error(write_csv: WriteCsv) -> None:
    loaded = load(write_csv, [[EVENT, TRACK, reg_id(n), ""] for n in range(2)])
    rows = reconcile(loaded, plan_batches(loaded.groups, batch_size=100), [BatchResult(1, 400, error="HTTP 400: bad")])
    assert rows.outcome.tolist() == ["failed", "failed"]
    assert rows.error.tolist() == ["HTTP 400: bad"] * 2
    assert rows.http_status.tolist() == [400, 400]


def test_batches_without_a_result_stay_pending_with_the_reason(write_csv: WriteCsv) -> None:
    loaded = load(write_csv, [[EVENT, TRACK, reg_id(n), ""] for n in range(2)])
    rows = reconcile(loaded, plan_batches(loaded.groups, batch_size=1), [BatchResult(1, 200)], pending_reason="why")
    assert rows.outcome.tolist() == ["succeeded", "pending"]
    assert rows.error.tolist() == ["", "why"]


def test_planned_rows_not_yet_batched_are_pending_and_the_rest_held_back(write_csv: WriteCsv) -> None:
    """A run stopped before its batches were cut (in the reads) leaves its planned rows pending, not held back."""
    loaded = load(write_csv, [[EVENT, TRACK, reg_id(n), ""] for n in range(3)])
    planned = [replace(loaded.groups[0], registration_ids=loaded.groups[0].registration_ids[:2], rows=(0, 1))]
    rows = reconcile(loaded, [], [], pending_reason="stopped", planned=planned, held_back_reason="beyond --limit")
    assert rows.outcome.tolist() == ["pending"] * 3
    assert rows.error.tolist() == ["stopped", "stopped", "beyond --limit"]
    assert rows.batch.tolist() == [0, 0, 0]


def test_duplicates_follow_their_first_copy_for_the_exit_code(write_csv: WriteCsv) -> None:
    loaded = load(write_csv, [[EVENT, TRACK, reg_id(1), ""], [EVENT, TRACK, reg_id(1), ""]])
    batches = plan_batches(loaded.groups, batch_size=100)
    rows = reconcile(loaded, batches, [BatchResult(1, 200)])
    assert rows.outcome.tolist() == ["succeeded", "duplicate"]
    assert rows.error[1] == "repeats row 2 (sent once, with that row; its outcome: succeeded)"
    assert all_succeeded(loaded, rows)
    failed = reconcile(loaded, batches, [BatchResult(1, 207, frozenset({reg_id(1)}))])
    assert not all_succeeded(loaded, failed)
