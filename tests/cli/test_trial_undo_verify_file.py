"""`undo` given the verification file of a run puts back the run it checked (found in a user trial of main)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunCli, StartSandbox, WriteCsv, cancel_argv, known, rows_for, undo_argv


def _statuses(box_rows: list[list[str]], box: object) -> list[str | None]:
    state = box.state  # type: ignore[attr-defined]
    return [state.status_of(row[0], row[1], row[2].lower()) for row in box_rows]


def test_undo_of_a_verification_file_undoes_the_run_it_checked(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv
) -> None:
    rows = rows_for(3, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    results = path.with_name("input.results.csv")
    assert run_cli(cancel_argv(path, box.url)) == 0
    assert run_cli(["verify", str(results), "--base-url", box.url]) == 0
    verification = path.with_name("input.results.verify.csv")
    assert verification.exists()
    assert run_cli(undo_argv(verification, box.url)) == 0
    assert _statuses(rows, box) == ["REGISTERED"] * 3
    assert path.with_name("input.results.undo.csv").exists()  # beside the run's results, as `undo RUN_ID` writes


def test_a_verification_file_no_run_wrote_beside_is_refused_naming_the_results_file(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox()
    stray = tmp_path / "gala.results.verify.csv"
    stray.write_text("event_id,track_id,registration_id,outcome\n", encoding="utf-8")
    assert run_cli(undo_argv(stray, box.url)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"batcher: error: {stray} is a verification file and no run of the history wrote the results it checked; "
        "give the results file instead (gala.results.csv or gala.results.xlsx), or a run ID ('batcher runs' lists "
        "them)"
    ]
    assert box.state.requests == []
