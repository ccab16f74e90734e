"""Hostile input files: workbook zip bombs, very wide headers, formula escapes that must read back, bidi controls,
and secrets echoed into the error column."""

from __future__ import annotations

import csv
import random
import string
import zipfile
from pathlib import Path

import openpyxl
import pytest

from batcher.errors import InputError
from batcher.input import workbook
from batcher.input.loader import MAX_COLUMNS, InputOptions, load_input, printable
from batcher.models import BatchResult, Outcome
from batcher.plan.chunker import plan_batches
from batcher.plan.reconciler import reconcile
from batcher.results.report import extract_rows, read_results_file
from batcher.results.writer import write_results
from batcher.support import redaction
from tests.conftest import EVENT, TRACK, reg_id

HEADER = ["Event ID", "Track ID", "Registration ID"]


def _book(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def _with_big_cell(path: Path, text: str, *, doctype: bytes = b"") -> Path:
    """A workbook whose data cell holds text (openpyxl itself cuts cells to Excel's 32,767 characters)."""
    _book(path, [HEADER, [EVENT, TRACK, "PLACEHOLDER"]])
    members = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            members[name] = archive.read(name)
    sheet = "xl/worksheets/sheet1.xml"
    assert b"PLACEHOLDER" in members[sheet]
    members[sheet] = members[sheet].replace(b"PLACEHOLDER", text.encode())
    if doctype:
        members[sheet] = doctype + members[sheet].split(b"?>", 1)[-1]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


# --- 13.6: workbooks bounded in what they inflate to, in rows, columns and cell size


def test_a_workbook_that_inflates_far_past_its_size_is_refused_before_reading(tmp_path: Path) -> None:
    path = _with_big_cell(tmp_path / "bomb.xlsx", "A" * (workbook.RATIO_FROM_BYTES * 2))
    assert path.stat().st_size < 100_000
    with pytest.raises(InputError, match=r"bomb.xlsx: the workbook's part .* inflates .* \(over 200 times\)"):
        load_input(path, default_status="CANCELED")


def test_an_entity_expansion_bomb_in_a_sheet_is_refused(tmp_path: Path) -> None:
    entities = b'<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    path = _with_big_cell(tmp_path / "laughs.xlsx", "&b;", doctype=entities)
    # defusedxml (a dependency, which openpyxl uses when present) refuses the entities before any expands
    with pytest.raises(InputError, match=r"laughs.xlsx: not a readable .xlsx workbook \("):
        load_input(path, default_status="CANCELED")


def test_a_workbook_whose_members_add_up_past_the_bound_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _book(tmp_path / "big.xlsx", [HEADER, [EVENT, TRACK, reg_id(1)]])
    total = sum(member.file_size for member in zipfile.ZipFile(path).infolist())
    monkeypatch.setattr(workbook, "MAX_INFLATED_BYTES", total - 1)
    with pytest.raises(InputError, match=rf"the workbook would inflate to {total:,} bytes, over the limit"):
        load_input(path, default_status="CANCELED")


def test_a_cell_past_the_limit_is_refused_while_the_sheet_streams(tmp_path: Path) -> None:
    noise = "".join(random.Random(1).choices(string.ascii_letters, k=workbook.MAX_CELL_CHARS + 1))
    path = _with_big_cell(tmp_path / "cell.xlsx", noise)
    with pytest.raises(InputError, match=r"cell.xlsx: row 2, column 3 holds 1,048,577 characters, over the limit"):
        load_input(path, default_status="CANCELED")


def test_a_sheet_with_more_rows_or_columns_than_the_bounds_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workbook, "MAX_ROWS", 5)
    rows = [HEADER, *([EVENT, TRACK, reg_id(n)] for n in range(10))]
    with pytest.raises(InputError, match=r"rows.xlsx: the sheet has more than 5 rows"):
        load_input(_book(tmp_path / "rows.xlsx", rows), default_status="CANCELED")
    monkeypatch.setattr(workbook, "MAX_COLUMNS", 4)
    wide = [[*HEADER, "a", "b", "c"], [EVENT, TRACK, reg_id(1), 1, 2, 3]]
    with pytest.raises(InputError, match=r"wide.xlsx: row 1 has cells past column 4"):
        load_input(_book(tmp_path / "wide.xlsx", wide), default_status="CANCELED")


# --- 13.7: a very wide header is refused before the rows are parsed


def test_a_header_past_the_column_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(["event_id", "track_id", "registration_id"] + [""] * MAX_COLUMNS) + "\nx,y,z\n")
    with pytest.raises(InputError, match=r"wide.csv: the header has 10,003 comma-separated columns, over the limit"):
        load_input(path, default_status="CANCELED")


def test_a_header_line_of_millions_of_empty_fields_is_refused_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "endless.csv"
    path.write_bytes(b"event_id,track_id,registration_id" + b"," * 8_000_000)
    with pytest.raises(InputError, match=r"endless.csv: the header has over [\d,]+ comma-separated columns"):
        load_input(path, default_status="CANCELED")


# --- 13.11: an accepted key cell written with a formula escape reads back with its meaning


def test_a_tab_and_uuid_cell_comes_back_through_only_and_report_out(tmp_path: Path) -> None:
    path = tmp_path / "tab.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, [EVENT, TRACK, "\t" + reg_id(1)], [EVENT, TRACK, "=cmd|x"]])
    loaded = load_input(path, default_status="CANCELED")
    assert loaded.invalid_reason[0] == ""
    rows = reconcile(loaded, plan_batches(loaded.groups, batch_size=10), [BatchResult(1, 500, error="HTTP 500")])
    results = tmp_path / "tab.results.csv"
    write_results(results, loaded, rows)
    assert b"'\t" + reg_id(1).encode() in results.read_bytes()  # escaped for a spreadsheet
    again = load_input(results, default_status="CANCELED", options=InputOptions(only=frozenset({"failed"})))
    assert again.invalid_reason.tolist() == [""]
    assert again.registration_id.tolist() == [reg_id(1)]
    assert again.values[2].tolist() == ["\t" + reg_id(1)]
    retry = tmp_path / "retry.csv"
    assert extract_rows(read_results_file(results), [Outcome.FAILED], retry) == 1
    assert load_input(retry, default_status="CANCELED").registration_id.tolist() == [reg_id(1)]
    assert extract_rows(read_results_file(results), [Outcome.INVALID], retry) == 1
    assert retry.read_text(encoding="utf-8").splitlines()[1].endswith(",'=cmd|x")  # still escaped for a spreadsheet
    assert read_results_file(results).loaded.values[2].tolist() == ["\t" + reg_id(1), "=cmd|x"]


# --- 13.12: bidi controls are neutralized in messages


@pytest.mark.parametrize("control", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2069"])
def test_bidi_controls_are_shown_as_replacement_characters(tmp_path: Path, control: str) -> None:
    assert printable(f"ab{control}cd") == "ab\ufffdcd"
    path = tmp_path / "bidi.csv"
    path.write_text(f"event_id,track_id,registration_id\n{EVENT},{TRACK},x{control}y\n", encoding="utf-8")
    reason = load_input(path, default_status="CANCELED").invalid_reason[0]
    assert control not in reason and 'not a UUID: "x\ufffdy"' in reason


# --- secrets a server echoes never reach the results file


def test_a_known_secret_in_an_error_is_masked_in_the_results(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"event_id,track_id,registration_id\n{EVENT},{TRACK},{reg_id(1)}\n", encoding="utf-8")
    loaded = load_input(path, default_status="CANCELED")
    redaction.add("s3cret-token-value")
    try:
        rows = reconcile(
            loaded, plan_batches(loaded.groups, batch_size=10), [BatchResult(1, 400, error="bad s3cret-token-value")]
        )
        write_results(tmp_path / "out.csv", loaded, rows)
    finally:
        redaction.forget_all()
    written = (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert "s3cret-token-value" not in written and "bad ***" in written
