"""Reading an .xlsx sheet: which sheet, cells as text as a spreadsheet shows them, damaged workbooks."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path

import openpyxl
import pytest

from batcher.errors import InputError, UsageError
from batcher.input.loader import InputOptions, load_input
from batcher.input.workbook import cell_text, is_workbook, read_sheet
from tests.conftest import EVENT, TRACK, reg_id

HEADER = ["Event ID", "Track ID", "Registration ID", "Registration Status"]


def write_xlsx(path: Path, sheets: Mapping[str, Sequence[Sequence[object]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("007", "007"),
        (12, "12"),
        (12.0, "12"),
        (-3.0, "-3"),
        (2.5, "2.5"),
        (0.1 + 0.2, "0.3"),
        (1e20, "1e+20"),
        (True, "TRUE"),
        (datetime(2024, 5, 1), "2024-05-01"),
        (datetime(2024, 5, 1, 10, 30), "2024-05-01 10:30:00"),
        (date(2024, 5, 2), "2024-05-02"),
        (time(9, 5), "09:05:00"),
        (timedelta(hours=1), "1:00:00"),
    ],
)
def test_cells_read_as_a_spreadsheet_shows_them(value: object, text: str) -> None:
    assert cell_text(value) == text


@pytest.mark.parametrize(("name", "expected"), [("a.xlsx", True), ("A.XLSX", True), ("a.xlsm", True), ("a.csv", False)])
def test_workbooks_are_known_by_their_suffix(name: str, expected: bool) -> None:
    assert is_workbook(Path(name)) is expected


def test_the_first_sheet_is_read_unless_one_is_named(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "in.xlsx",
        {
            "Cancel": [HEADER, [EVENT.upper(), TRACK, reg_id(1), "Cancelled"]],
            "Restore": [HEADER, [EVENT, TRACK, reg_id(2), "registered"], [EVENT, TRACK, reg_id(3), "registered"]],
        },
    )
    first = load_input(path, default_status=None)
    assert first.registration_id.tolist() == [reg_id(1)]
    assert first.event_id.tolist() == [EVENT]
    assert first.values[0].tolist() == [EVENT.upper()]
    named = load_input(path, default_status=None, options=InputOptions(sheet="Restore"))
    assert named.registration_status.tolist() == ["REGISTERED", "REGISTERED"]


def test_an_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "in.xlsx", {"One": [HEADER], "Two": [HEADER]})
    with pytest.raises(InputError) as caught:
        load_input(path, default_status=None, options=InputOptions(sheet="Three"))
    assert str(caught.value) == f'{path}: no sheet named "Three" (sheets: "One", "Two"). Pick one with --sheet.'


def test_numbers_and_dates_keep_their_spreadsheet_look_and_empty_rows_are_skipped(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "in.xlsx",
        {
            "Sheet": [
                [*HEADER, "Seats", "Day", None, None],
                [EVENT, 12345, reg_id(1), "CANCELED", 12.0, datetime(2024, 5, 1)],
                [],
                [None, None],
                [EVENT, TRACK, reg_id(2), "CANCELED", 2.5],
            ]
        },
    )
    loaded = load_input(path, default_status=None)
    assert loaded.header == (*HEADER, "Seats", "Day")
    assert loaded.row_count == 2
    assert loaded.values[1].tolist() == ["12345", TRACK]
    assert loaded.values[4].tolist() == ["12", "2.5"]
    assert loaded.values[5].tolist() == ["2024-05-01", ""]
    assert loaded.invalid_reason.tolist() == ["", ""]


def test_an_empty_sheet_is_an_input_error(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "in.xlsx", {"Blank": []})
    with pytest.raises(InputError, match='sheet "Blank" is empty'):
        read_sheet(path, sheet=None)


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def test_damaged_workbooks_are_input_errors(tmp_path: Path) -> None:
    text = tmp_path / "text.xlsx"
    text.write_text("event_id,track_id,registration_id\n")
    with pytest.raises(InputError, match=r"not a readable \.xlsx workbook \(BadZipFile"):
        load_input(text, default_status=None)
    with pytest.raises(InputError, match=r"not a readable \.xlsx workbook \(KeyError"):
        load_input(make_zip(tmp_path / "zip.xlsx", {"a.txt": b"x"}), default_status=None)
    good = write_xlsx(tmp_path / "good.xlsx", {"Sheet": [HEADER, [EVENT, TRACK, reg_id(1), "CANCELED"]]})
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["xl/worksheets/sheet1.xml"] = b"<worksheet"
    with pytest.raises(InputError, match=r"not a readable \.xlsx workbook \(ParseError"):
        load_input(make_zip(tmp_path / "broken.xlsx", members), default_status=None)


def test_csv_options_are_refused_for_a_workbook_and_sheet_for_a_csv(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "in.xlsx", {"Sheet": [HEADER, [EVENT, TRACK, reg_id(1), "CANCELED"]]})
    with pytest.raises(UsageError, match="--delimiter and --encoding apply to CSV files"):
        load_input(path, default_status=None, options=InputOptions(delimiter=";"))
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("event_id,track_id,registration_id\n")
    with pytest.raises(UsageError, match=r"--sheet applies to \.xlsx workbooks"):
        load_input(csv_path, default_status=None, options=InputOptions(sheet="Sheet"))
