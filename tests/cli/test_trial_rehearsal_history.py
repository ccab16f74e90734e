"""A --sandbox rehearsal's run is never offered for undo against the real API, and `runs` shows it as a rehearsal
(found in a user trial of main)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batcher.results import history
from tests.conftest import RunCli, StartSandbox, WriteCsv, cancel_argv, known, rows_for, undo_argv


def test_a_rehearsal_canary_is_listed_as_a_rehearsal_and_not_offered_for_undo(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(3, status="REGISTERED")
    real = start_sandbox(registrations=known(rows))  # stands for the real API
    path = write_csv(rows)
    assert run_cli([*cancel_argv(path, real.url), "--sandbox", "--limit", "1"]) == 3
    capsys.readouterr()
    assert run_cli(cancel_argv(path, real.url)) == 0  # the real run on the same results path
    err = capsys.readouterr().err
    rehearsal, run = history.list_runs(history_state())
    assert f"held the results of run {rehearsal.run_id}, a rehearsal (--sandbox)" in err
    assert f"batcher undo {rehearsal.run_id}" not in err
    assert run_cli(["runs"]) == 0
    listed = capsys.readouterr().out.splitlines()
    first = next(line for line in listed if line.startswith(rehearsal.run_id))
    assert " rehearsal " in first and " open " not in first
    assert first.endswith(" / sandbox (in-process, --sandbox)")
    second = next(line for line in listed if line.startswith(run.run_id))
    assert " finished " in second and second.endswith(f" / {real.url}")
    assert run_cli(["runs", rehearsal.run_id]) == 0
    state = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("state "))
    assert state.startswith("state     rehearsal (--sandbox): nothing at the API was read or changed; nothing to undo;")


def test_undo_of_a_rehearsal_against_the_real_api_is_refused(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(3, status="REGISTERED")
    real = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    assert run_cli(cancel_argv(path, real.url)) == 0  # the real run: CANCELED at the API
    assert run_cli([*cancel_argv(path, real.url), "--sandbox"]) == 0  # then a rehearsal on the same results path
    (_, rehearsal) = history.list_runs(history_state())
    capsys.readouterr()
    for named in (Path(rehearsal.run_id), path.with_name("input.results.csv")):  # by run ID, by results file
        assert run_cli(undo_argv(named, real.url)) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"batcher: error: run {rehearsal.run_id} (input.results.csv) was a rehearsal (--sandbox): it changed "
            "nothing at the API, so there is nothing to undo there; nothing was sent"
        ]
    assert [real.state.status_of(row[0], row[1], row[2].lower()) for row in rows] == ["CANCELED"] * 3


def history_state() -> Path:
    return Path.home() / ".local" / "state" / "batcher"
