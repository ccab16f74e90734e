"""The target status is always explicit (issue 11.1): --status, --status-column, and the export's status column."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EVENT, TRACK, RunCli, StartSandbox, WriteCsv, read_results, reg_id

EXPORT_HEADER = ["Event ID", "Track ID", "Registration ID", "Registration Status", "First Name"]


def _export(write_csv: WriteCsv, count: int = 20) -> tuple[Path, list[list[str]]]:
    """An export: its "Registration Status" column holds the CURRENT status, mostly REGISTERED."""
    rows = [[EVENT, TRACK, reg_id(n), "CANCELED" if n % 10 == 0 else "REGISTERED", f"p{n}"] for n in range(count)]
    return write_csv(rows, header=EXPORT_HEADER, name="export.csv"), rows


def test_status_cancels_every_row_of_an_export_whatever_its_status_column_says(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv
) -> None:
    path, rows = _export(write_csv)
    box = start_sandbox(registrations=[(EVENT, TRACK, row[2], row[3]) for row in rows])
    code = run_cli(["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes"])
    assert code == 0
    assert all(box.state.status_of(EVENT, TRACK, row[2]) == "CANCELED" for row in rows)
    results = read_results(path.with_name("export.results.csv"))
    assert {row["target_status"] for row in results} == {"CANCELED"}
    assert [row["Registration Status"] for row in results] == [row[3] for row in rows]  # kept as written


def test_an_export_without_status_is_refused_naming_its_status_column_and_both_choices(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path, rows = _export(write_csv)
    box = start_sandbox(registrations=[(EVENT, TRACK, row[2], row[3]) for row in rows])
    assert run_cli(["run", str(path), "--base-url", box.url, "--yes"]) == 2
    assert run_cli(["plan", str(path)], {}) == 2
    assert box.state.requests == []
    err = capsys.readouterr().err
    assert '"Registration Status"' in err
    assert "--status S to set one status for every row" in err
    assert "--status-column 'Registration Status' if that column holds the status to set" in err


def test_status_column_names_the_targets_and_status_fills_its_empty_cells(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv
) -> None:
    header = ["event_id", "track_id", "registration_id", "New Status"]
    rows = [[EVENT, TRACK, reg_id(0), "canceled"], [EVENT, TRACK, reg_id(1), ""], [EVENT, TRACK, reg_id(2), "PENDING"]]
    path = write_csv(rows, header=header)
    box = start_sandbox(registrations=[(EVENT, TRACK, row[2], "REGISTERED") for row in rows])
    args = ["run", str(path), "--status-column", "new_status", "--base-url", box.url, "--yes"]
    assert run_cli(args) == 1  # the empty cell is invalid without --status
    results = read_results(path.with_name("input.results.csv"))
    assert [row["outcome"] for row in results] == ["succeeded", "invalid", "succeeded"]
    assert run_cli([*args, "--status", "EXPIRED", "--resume"]) == 0
    assert [box.state.status_of(EVENT, TRACK, reg_id(n)) for n in range(3)] == ["CANCELED", "EXPIRED", "PENDING"]


def test_a_status_column_that_is_not_in_the_file_is_one_line(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _export(write_csv, 2)
    assert run_cli(["plan", str(path), "--status-column", "Target"], {}) == 2
    assert '--status-column Target: no column "Target"' in capsys.readouterr().err
