"""Spreadsheet-grade input: physical row numbers, Excel's sep= line, results in the input's format, every missing
column at once, and a results file as input carrying its succeeded rows over."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pytest

from batcher.errors import InputError, UsageError
from batcher.input.earlier import RESULT_COLUMNS
from batcher.input.loader import InputOptions, load_input
from batcher.models import BatchResult
from batcher.plan.chunker import plan_batches
from batcher.plan.reconciler import reconcile
from batcher.results.format import UTF8_BOM
from batcher.results.writer import write_results
from tests.conftest import EVENT, TRACK, RunCli, StartSandbox, WriteCsv, known, reg_id

# --- 10.8: row numbers count physical rows, blank ones included


def test_csv_row_numbers_count_blank_lines(run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "blank.csv"
    lines = ["event_id,track_id,registration_id", f"{EVENT},{TRACK},{reg_id(1)}", "", ",,", f"{EVENT},{TRACK},bad", ""]
    path.write_text("\r\n".join(lines), encoding="utf-8")
    loaded = load_input(path, default_status="CANCELED")
    assert loaded.row_number.tolist() == [2, 5]
    assert run_cli(["plan", str(path), "--status", "CANCELED"], {}) == 1
    assert 'row 5: registration_id is not a UUID: "bad"' in capsys.readouterr().out


def test_row_numbers_survive_quoted_line_breaks_and_the_careful_reader(tmp_path: Path) -> None:
    path = tmp_path / "careful.csv"
    # a short row sends the file to the careful reader; a quoted line break is one spreadsheet row
    lines = [
        "event_id,track_id,registration_id,note",
        f'{EVENT},{TRACK},{reg_id(1)},"a\nb"',
        "",
        "   ",
        f"{EVENT},{TRACK}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert load_input(path, default_status="CANCELED").row_number.tolist() == [2, 5]


def test_duplicates_name_the_physical_row_of_their_first_copy(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    row = f"{EVENT},{TRACK},{reg_id(1)}"
    path.write_text("\n".join(["event_id,track_id,registration_id", "", row, "", row]) + "\n", encoding="utf-8")
    loaded = load_input(path, default_status="CANCELED")
    batches = plan_batches(loaded.groups, batch_size=10)
    rows = reconcile(loaded, batches, [BatchResult(1, 200)])
    assert rows.error[1].startswith("repeats row 3 ")


def test_xlsx_row_numbers_count_empty_rows(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Event ID", "Track ID", "Registration ID"])
    sheet.append([EVENT, TRACK, reg_id(1)])
    sheet["A5"], sheet["B5"], sheet["C5"] = EVENT, TRACK, "bad"
    path = tmp_path / "gaps.xlsx"
    book.save(path)
    loaded = load_input(path, default_status="CANCELED")
    assert loaded.row_number.tolist() == [2, 5]


# --- 10.9: Excel's sep= first line


@pytest.mark.parametrize(("line", "separator"), [("sep=;", ";"), ("sep=,", ","), ("sep=\t", "\t"), ('"sep=;"', ";")])
def test_a_sep_line_names_the_separator_and_is_skipped(tmp_path: Path, line: str, separator: str) -> None:
    path = tmp_path / "sep.csv"
    rows = [
        ["Event ID", "Track ID", "Registration ID", "Name"],
        [EVENT, TRACK, reg_id(1), "Ann, Bo" if separator != "," else "Ann; Bo"],
    ]
    body = "\r\n".join(separator.join(row) for row in rows)
    path.write_bytes(UTF8_BOM + f"{line}\r\n{body}\r\n".encode())
    loaded = load_input(path, default_status="CANCELED")
    assert loaded.header == ("Event ID", "Track ID", "Registration ID", "Name")
    assert loaded.invalid_reason.tolist() == [""]
    assert loaded.row_number.tolist() == [2]  # Excel hides the sep= line
    assert loaded.source.separator == separator
    assert load_input(path, default_status="CANCELED", options=InputOptions(delimiter=separator)).row_count == 1


def test_a_sep_line_naming_another_separator_is_refused_in_one_clean_line(tmp_path: Path) -> None:
    path = tmp_path / "sep.csv"
    path.write_text(f"sep=\x07\nevent_id,track_id,registration_id\n{EVENT},{TRACK},{reg_id(1)}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"the first line \(sep='\\x07'\) names a separator batcher does not read"):
        load_input(path, default_status="CANCELED")


def test_a_delimiter_that_disagrees_with_the_sep_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sep.csv"
    path.write_text(f"sep=;\nevent_id;track_id;registration_id\n{EVENT};{TRACK};{reg_id(1)}\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"sep=\), but --delimiter gives a comma; drop --delimiter or make it agree"):
        load_input(path, default_status="CANCELED", options=InputOptions(delimiter=","))


# --- 10.10: the results follow the input's separator, with a byte-order mark unless the input was plain UTF-8


def _results(tmp_path: Path, path: Path, results_format: str, **options: str) -> bytes:
    loaded = load_input(path, default_status="CANCELED", options=InputOptions(**options))  # type: ignore[arg-type]
    rows = reconcile(loaded, plan_batches(loaded.groups, batch_size=10), [BatchResult(1, 200)])
    out = tmp_path / f"out.{results_format}.csv"
    write_results(out, loaded, rows, results_format=results_format)
    return out.read_bytes()


def test_a_cp1252_semicolon_input_gives_semicolon_results_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "euro.csv"
    path.write_bytes(
        f"Event ID;Track ID;Registration ID;Name\r\n{EVENT};{TRACK};{reg_id(1)};Renée\r\n".encode("cp1252")
    )
    auto = _results(tmp_path, path, "auto", encoding="cp1252")
    assert auto.startswith(UTF8_BOM)
    header, row = list(csv.reader(io.StringIO(auto.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert header == ["Event ID", "Track ID", "Registration ID", "Name", *RESULT_COLUMNS]
    assert row[3] == "Renée"
    assert _results(tmp_path, path, "excel", encoding="cp1252") == auto
    plain = _results(tmp_path, path, "csv", encoding="cp1252")
    assert not plain.startswith(UTF8_BOM)
    assert plain.decode("utf-8").splitlines()[0] == "Event ID,Track ID,Registration ID,Name," + ",".join(RESULT_COLUMNS)


def test_plain_utf8_gives_plain_results_and_a_bom_or_a_workbook_gives_a_bom(tmp_path: Path) -> None:
    text = f"event_id,track_id,registration_id\r\n{EVENT},{TRACK},{reg_id(1)}\r\n"
    plain = tmp_path / "plain.csv"
    plain.write_text(text, encoding="utf-8")
    assert _results(tmp_path, plain, "auto").startswith(b"event_id,")
    assert _results(tmp_path, plain, "excel").startswith(UTF8_BOM + b"event_id,")
    marked = tmp_path / "marked.csv"
    marked.write_bytes(UTF8_BOM + text.encode())
    assert _results(tmp_path, marked, "auto").startswith(UTF8_BOM + b"event_id,")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["event_id", "track_id", "registration_id"])
    sheet.append([EVENT, TRACK, reg_id(1)])
    book.save(tmp_path / "book.xlsx")
    assert _results(tmp_path, tmp_path / "book.xlsx", "auto").startswith(UTF8_BOM + b"event_id,")


def test_an_unknown_results_format_is_a_programming_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text(f"event_id,track_id,registration_id\n{EVENT},{TRACK},{reg_id(1)}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="results_format"):
        _results(tmp_path, path, "xls")


# --- 10.11: every missing column in one message


def test_every_missing_column_is_named_at_once(write_csv: WriteCsv) -> None:
    path = write_csv([["x", "y"]], header=["Name", "Seats"])
    with pytest.raises(InputError) as caught:
        load_input(path, default_status="CANCELED")
    assert str(caught.value) == (
        f'{path}: no "event_id" and "registration_id" columns (found: Name, Seats). '
        "Headers match ignoring case, spaces, dashes and underscores; or name the columns with "
        "--column event_id=HEADER --column registration_id=HEADER. "
        "Or name people by email: an Email column, or --column email_address=HEADER."
    )


# --- 10.12: a results file as input carries its succeeded rows over


def _earlier_results(tmp_path: Path) -> Path:
    header = ["Event ID", "Track ID", "Registration ID", "Name", *RESULT_COLUMNS]
    rows = [
        [EVENT, TRACK, reg_id(1), "Ann", "succeeded", "REGISTERED", "CANCELED", "207", "", "2", "7"],
        [
            EVENT,
            TRACK,
            reg_id(2),
            "Bo",
            "failed",
            "",
            "CANCELED",
            "207",
            "rejected by the API in a 207 response",
            "1",
            "7",
        ],
        [EVENT, TRACK, reg_id(3), "Cy", "pending", "", "CANCELED", "", "not sent", "", "8"],
    ]
    path = tmp_path / "earlier.results.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def test_succeeded_rows_of_a_results_file_are_carried_over_and_not_sent(tmp_path: Path) -> None:
    loaded = load_input(_earlier_results(tmp_path), default_status="CANCELED")
    assert loaded.carried_over.tolist() == [True, False, False]
    assert loaded.carried_over_rows == 1
    assert [group.registration_ids for group in loaded.groups] == [(reg_id(2), reg_id(3))]
    batches = plan_batches(loaded.groups, batch_size=10)
    rows = reconcile(loaded, batches, [BatchResult(1, 200)])
    assert rows.outcome.tolist() == ["succeeded"] * 3
    assert (rows.http_status.tolist(), rows.attempts.tolist(), rows.batch.tolist()) == (
        [207, 200, 200],
        [2, 1, 1],
        [7, 1, 1],
    )


def test_only_still_picks_the_rows_and_carries_nothing_over(tmp_path: Path) -> None:
    options = InputOptions(only=frozenset({"succeeded", "failed"}))
    loaded = load_input(_earlier_results(tmp_path), default_status="CANCELED", options=options)
    assert loaded.carried_over_rows == 0
    assert [group.registration_ids for group in loaded.groups] == [(reg_id(1), reg_id(2))]


def test_a_run_on_a_results_file_sends_only_what_did_not_succeed(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(registrations=known([[EVENT, TRACK, reg_id(n)] for n in (1, 2, 3)]))
    results = tmp_path / "again.results.csv"
    args = ["run", str(_earlier_results(tmp_path)), "--status", "CANCELED", "--base-url", box.url, "--yes"]
    assert run_cli([*args, "--results", str(results)]) == 0
    assert [put.json["registration_ids"] for put in box.state.puts] == [[reg_id(2), reg_id(3)]]
    with results.open(newline="", encoding="utf-8") as handle:
        assert [(row["Name"], row["outcome"]) for row in csv.DictReader(handle)] == [
            ("Ann", "succeeded"),
            ("Bo", "succeeded"),
            ("Cy", "succeeded"),
        ]
