"""A verify file reads as the results file it checked: verify and run take it (found in a trial: verify said it was
"not a batcher results file", and run wrote every result column twice)."""

from __future__ import annotations

import csv

from tests.conftest import RunCli, StartSandbox, WriteCsv, cancel_argv, known, read_results, rows_for, undo_argv


def test_verify_and_run_take_a_verify_file(run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv) -> None:
    rows = rows_for(3, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    results = path.with_name(path.stem + ".results.csv")
    assert run_cli(cancel_argv(path, box.url)) == 0
    assert run_cli(["verify", str(results), "--base-url", box.url]) == 0
    checked = results.with_name(results.stem + ".verify.csv")
    assert run_cli(["verify", str(checked), "--base-url", box.url]) == 0
    again = checked.with_name(checked.stem + ".verify.csv")
    assert [row["verified"] for row in read_results(again)] == ["yes"] * 3
    assert run_cli([*cancel_argv(checked, box.url), "--results", str(path.with_name("rerun.csv"))]) == 0
    with path.with_name("rerun.csv").open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header.count("outcome") == 1 and "verified" not in header
    # undo of the verify file puts back the run it checked, from that run's journal
    assert run_cli(undo_argv(checked, box.url)) == 0
    assert [box.state.status_of(row[0], row[1], row[2].lower()) for row in rows] == ["REGISTERED"] * 3
