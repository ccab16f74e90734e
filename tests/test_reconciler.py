"""Merging rows and batch results into one outcome per row, and the results file."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batcher import reconciler
from batcher.chunker import plan_batches
from batcher.loader import LoadedInput, load_input
from batcher.models import BatchResult, Outcome
from batcher.reconciler import REJECTED_IN_207, all_succeeded, reconcile, write_results
from tests.conftest import EVENT, TRACK, reg_id

WriteCsv = Callable[..., Path]


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


def test_duplicates_follow_their_first_copy_for_the_exit_code(write_csv: WriteCsv) -> None:
    loaded = load(write_csv, [[EVENT, TRACK, reg_id(1), ""], [EVENT, TRACK, reg_id(1), ""]])
    batches = plan_batches(loaded.groups, batch_size=100)
    rows = reconcile(loaded, batches, [BatchResult(1, 200)])
    assert rows.outcome.tolist() == ["succeeded", "duplicate"]
    assert rows.error[1] == "repeats row 2 (sent once, with that row; its outcome: succeeded)"
    assert all_succeeded(loaded, rows)
    failed = reconcile(loaded, batches, [BatchResult(1, 207, frozenset({reg_id(1)}))])
    assert not all_succeeded(loaded, failed)


def test_results_file_keeps_input_columns_and_order_and_adds_result_columns(
    write_csv: WriteCsv, tmp_path: Path
) -> None:
    path = write_csv(
        [[EVENT, TRACK, reg_id(1), "x", 'Ann, "A"'], [EVENT, TRACK, "bad", "", "Bo"]],
        header=["Event ID", "Track ID", "Registration ID", "Registration Status", "Name"],
    )
    loaded = load_input(path, default_status="CANCELED")
    assert loaded.invalid_reason[0].startswith("unknown registration_status")
    rows = reconcile(loaded, plan_batches(loaded.groups, batch_size=100), [])
    out = tmp_path / "out.csv"
    write_results(out, loaded, rows)
    with out.open(newline="") as handle:
        records = list(csv.reader(handle))
    assert records[0] == [
        "Event ID",
        "Track ID",
        "Registration ID",
        "Registration Status",
        "Name",
        "outcome",
        "http_status",
        "error",
        "attempts",
        "batch",
    ]
    assert records[1][:5] == [EVENT, TRACK, reg_id(1), "x", 'Ann, "A"']
    assert records[1][5] == Outcome.INVALID.value
    assert records[2][4:6] == ["Bo", "invalid"]
    assert len(records) == 3
    assert not list(tmp_path.glob(".out.csv.*"))  # no temporary file left behind


CELLS = st.text(alphabet=st.sampled_from(["a", "é", " ", ",", '"', "\r", "\n", "\t", ";", "'", "="]), max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notes=st.lists(CELLS, min_size=1, max_size=12), slice_rows=st.sampled_from([1, 3, 1 << 18]))
def test_results_file_holds_the_bytes_csv_writer_would_write(
    write_csv: WriteCsv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notes: list[str], slice_rows: int
) -> None:
    monkeypatch.setattr(reconciler, "_SLICE_ROWS", slice_rows)  # several slices: pyarrow's and the joined path
    rows_in = [
        [EVENT, TRACK, reg_id(n), "CANCELED" if n % 3 else "Refunded, really", note] for n, note in enumerate(notes)
    ]
    header = ("event_id", "track_id", "registration_id", "registration_status", "note")
    loaded = load_input(write_csv(rows_in + rows_in[:1], header=header), default_status=None)
    batches = plan_batches(loaded.groups, batch_size=2)
    results = [BatchResult(batches[0].number, 400, attempts=2, error='HTTP 400: "bad", very')] if batches else []
    rows = reconcile(loaded, batches, results)
    out = tmp_path / "out.csv"
    write_results(out, loaded, rows)
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow([*loaded.header, "outcome", "http_status", "error", "attempts", "batch"])
    for index in range(loaded.row_count):
        attempts, batch = int(rows.attempts[index]), int(rows.batch[index])
        writer.writerow(
            [
                *(column[index] for column in loaded.values),
                rows.outcome[index],
                str(rows.http_status[index] or ""),
                rows.error[index],
                str(attempts) if attempts or batch else "",
                str(batch or ""),
            ]
        )
    assert out.read_bytes() == expected.getvalue().encode()
