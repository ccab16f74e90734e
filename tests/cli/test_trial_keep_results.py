"""A run that reaches nothing leaves the results file of an earlier run in place (found in a user trial of main)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batcher.results import history
from tests.conftest import (
    RunCli,
    StartSandbox,
    WriteCsv,
    cancel_argv,
    closed_port,
    known,
    outcomes,
    rows_for,
    undo_argv,
)


def _state() -> Path:
    return Path.home() / ".local" / "state" / "batcher"


@pytest.mark.parametrize("where", ["unreachable", "wrong"])
def test_a_run_that_reached_nothing_leaves_the_earlier_results_in_place(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    rows = rows_for(3, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    results = path.with_name("input.results.csv")
    assert run_cli(cancel_argv(path, box.url)) == 0
    earlier = results.read_bytes()
    bad = f"http://127.0.0.1:{closed_port()}/v3" if where == "unreachable" else box.url.rsplit("/", 1)[0] + "/"
    capsys.readouterr()
    assert run_cli([*cancel_argv(path, bad), "--summary-json", str(path.with_name("summary.json"))]) == 3
    err = capsys.readouterr().err
    assert results.read_bytes() == earlier  # the finished run's results, untouched
    first, failed = history.list_runs(_state())
    kept = failed.folder / "results.csv"
    assert outcomes(kept) == ["pending"] * 3
    assert (
        f"batcher: note: nothing reached the API, so {results} is left as it was (the results of run "
        f"{first.run_id}); this run's rows are in {kept} (its run history folder)"
    ) in err.splitlines()
    assert "are replaced here" not in err
    assert f"batcher: results: {kept}" in err.splitlines()
    assert (first.folder / "results.csv").read_bytes() == earlier  # the earlier run's own copy is its own
    summary = json.loads((path.with_name("summary.json")).read_text(encoding="utf-8"))
    assert summary["results"] == str(kept)
    assert run_cli(undo_argv(results, box.url)) == 0  # the results file still leads to the run that changed them
    assert [box.state.status_of(row[0], row[1], row[2].lower()) for row in rows] == ["REGISTERED"] * 3


def test_a_run_that_reached_the_api_still_replaces_the_earlier_results_and_says_so(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(2, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    results = path.with_name("input.results.csv")
    assert run_cli(cancel_argv(path, box.url)) == 0
    assert run_cli(cancel_argv(path, box.url)) == 0
    assert outcomes(results) == ["unchanged"] * 2
    first, _ = history.list_runs(_state())
    assert f"held the results of run {first.run_id}; they are replaced here" in capsys.readouterr().err


def test_the_resume_command_after_a_run_that_reached_nothing_sends_the_rows(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(2, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    results = path.with_name("input.results.csv")
    assert run_cli([*cancel_argv(path, box.url), "--limit", "1"]) == 3  # a canary: one row sent
    assert run_cli(cancel_argv(path, f"http://127.0.0.1:{closed_port()}/v3", "--resume")) == 3
    assert outcomes(results) == ["succeeded", "pending"]  # the canary's results, left in place
    capsys.readouterr()
    assert run_cli(cancel_argv(path, box.url, "--resume")) == 0
    assert outcomes(results) == ["succeeded", "succeeded"]
    assert [box.state.status_of(row[0], row[1], row[2].lower()) for row in rows] == ["CANCELED"] * 2
