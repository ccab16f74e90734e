"""`batcher undo RESULTS` (issue 11.3) over real HTTP against the sandbox: changed rows go back to their previous
status, a registration changed since the run is left alone unless --force, every row gets one line, and an undo
can itself be undone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EVENT, TRACK, RunCli, RunningSandbox, StartSandbox, WriteCsv, read_results, reg_id, undo_argv

BEFORE = ["REGISTERED", "PENDING", "CANCELED", "REGISTERED"]
CHANGED_SINCE = "changed since the run (now EXPIRED); not undone; --force undoes it anyway"


def _statuses(box: RunningSandbox) -> list[str | None]:
    return [box.state.status_of(EVENT, TRACK, reg_id(n)) for n in range(len(BEFORE))]


def _first_run(run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv) -> tuple[RunningSandbox, Path]:
    box = start_sandbox(registrations=[(EVENT, TRACK, reg_id(n), status) for n, status in enumerate(BEFORE)])
    rows = [[EVENT, TRACK, reg_id(n)] for n in range(len(BEFORE))] + [[EVENT, TRACK, "not-a-uuid"]]
    path = write_csv(rows, header=["event_id", "track_id", "registration_id"])
    args = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--allow-invalid"]
    assert run_cli(args) == 0
    assert _statuses(box) == ["CANCELED"] * 4
    return box, path.with_name("input.results.csv")


def test_undo_puts_changed_rows_back_and_leaves_alone_what_changed_since_unless_forced(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    box, results = _first_run(run_cli, start_sandbox, write_csv)
    box.state.set_status(EVENT, TRACK, reg_id(1), "EXPIRED")  # someone else, after the run
    puts = len(box.state.puts)
    assert run_cli(undo_argv(results, box.url, "--dry-run")) == 0  # the plan sends nothing
    assert len(box.state.puts) == puts
    assert run_cli(undo_argv(results, box.url)) == 1
    assert _statuses(box) == ["REGISTERED", "EXPIRED", "CANCELED", "REGISTERED"]
    undone = read_results(results.with_name("input.results.undo.csv"))
    assert len(undone) == 5  # one line per row of the results file
    assert [row["outcome"] for row in undone] == ["succeeded", "failed", "unchanged", "succeeded", "unchanged"]
    assert undone[1]["error"] == CHANGED_SINCE
    assert undone[2]["error"] == "nothing to undo: the run left it unchanged"
    assert undone[4]["error"] == "nothing to undo: its outcome in the run was invalid"
    assert [row["target_status"] for row in undone[:4]] == ["REGISTERED", "PENDING", "", "REGISTERED"]
    assert [row["previous_status"] for row in undone[:4]] == ["CANCELED", "EXPIRED", "", "CANCELED"]
    assert "CANCELED → REGISTERED 2" in capsys.readouterr().err
    # --force (with --resume: what the undo already did is not sent again)
    sent = len(box.state.puts)
    assert run_cli(undo_argv(results, box.url, "--force", "--resume")) == 0
    assert _statuses(box) == ["REGISTERED", "PENDING", "CANCELED", "REGISTERED"]
    assert [put.json["registration_ids"] for put in box.state.puts[sent:]] == [[reg_id(1)]]


def test_an_undo_can_be_undone(run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv) -> None:
    box, results = _first_run(run_cli, start_sandbox, write_csv)
    assert run_cli(undo_argv(results, box.url)) == 0
    assert _statuses(box) == BEFORE
    undone = results.with_name("input.results.undo.csv")
    assert run_cli(undo_argv(undone, box.url)) == 0
    assert _statuses(box) == ["CANCELED"] * 4
    redone = read_results(undone.with_name("input.results.undo.undo.csv"))
    assert [row["outcome"] for row in redone] == ["succeeded", "succeeded", "unchanged", "succeeded", "unchanged"]


def test_a_run_without_reads_cannot_be_undone_and_says_why(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv
) -> None:
    box = start_sandbox(registrations=[(EVENT, TRACK, reg_id(n), "REGISTERED") for n in range(2)])
    path = write_csv([[EVENT, TRACK, reg_id(n)] for n in range(2)], header=["event_id", "track_id", "registration_id"])
    args = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-snapshot"]
    assert run_cli(args) == 0
    results = path.with_name("input.results.csv")
    puts = len(box.state.puts)
    assert run_cli(undo_argv(results, box.url)) == 1
    undone = read_results(results.with_name("input.results.undo.csv"))
    assert [row["outcome"] for row in undone] == ["invalid", "invalid"]
    assert {row["error"] for row in undone} == {"no previous status was recorded; cannot undo"}
    assert len(box.state.puts) == puts
