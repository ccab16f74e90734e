"""A quiet night (a header and no rows) after a busy one: its summary names no results file, since the one at that
path is the busy night's (found in a trial of docs/nightly.md)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import RunCli, StartSandbox, WriteCsv, cancel_argv, known, outcomes, rows_for


def test_the_quiet_night_s_summary_does_not_point_at_last_night_s_results(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = rows_for(2, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    path, summary = write_csv(rows), tmp_path / "summary.json"
    results = tmp_path / "today.results.csv"
    night = cancel_argv(path, box.url, "--results", str(results), "--summary-json", str(summary), "--resume")
    assert run_cli(night) == 0
    assert json.loads(summary.read_text("utf-8"))["results"] == str(results)
    path.write_text(",".join(["event_id", "track_id", "registration_id", "registration_status"]) + "\n", "utf-8")
    assert run_cli(night) == 0
    document = json.loads(summary.read_text("utf-8"))
    assert document["exit_code"] == 0 and document["results"] is None
    assert document["note"].endswith("has a header row but no data rows: nothing to do")
    assert outcomes(results) == ["succeeded"] * 2  # last night's, untouched
