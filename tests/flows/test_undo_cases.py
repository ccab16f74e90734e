"""More `batcher undo` cases end to end, in-process, against the sandbox over real HTTP on 127.0.0.1.

The run's results files are written here by hand (with RESULT_COLUMNS), so these tests hold whether or not the
run records previous_status yet.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from batcher.input.earlier import RESULT_COLUMNS
from batcher.sandbox import app as sandbox
from tests.conftest import (
    EVENT,
    TRACK,
    PaceStarts,
    RunCli,
    StartSandbox,
    WriteCsv,
    an_interval_apart,
    read_results,
    record_run,
    reg_id,
    rows_for,
    undo_argv,
)

NO_PREVIOUS = "no previous status was recorded; cannot undo"


def default_undo_path(results: Path) -> Path:
    return results.with_name(results.stem + ".undo.csv")


HEADER = ("event_id", "track_id", "registration_id", *RESULT_COLUMNS)
OTHER_TRACK = "vip"


def write_run_results(path: Path, rows: list[tuple[str, str, str, str, str]]) -> Path:
    """A run's results file: (track, registration, outcome, previous_status, target_status) per row."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for number, (track, registration, outcome, before, after) in enumerate(rows, start=1):
            sent = outcome in ("succeeded", "failed")
            writer.writerow(
                [EVENT, track, registration, outcome, before, after, "200" if sent else "", "", "1", str(number)]
            )
    record_run(path)  # the run's journal, in the run history: undo follows it
    return path


def status(box: sandbox.SandboxState, registration: str, track: str = TRACK) -> str | None:
    return box.status_of(EVENT, track, registration)


def changed_run(tmp_path: Path) -> tuple[Path, list[sandbox.Registration | tuple[str, ...]]]:
    """A run that canceled 5 rows (3 REGISTERED, 2 PENDING before), left one unchanged and failed one;
    and the sandbox as the run left it."""
    rows = [
        (TRACK, reg_id(0), "succeeded", "REGISTERED", "CANCELED"),
        (TRACK, reg_id(1), "succeeded", "PENDING", "CANCELED"),
        (TRACK, reg_id(2), "unchanged", "CANCELED", "CANCELED"),
        (TRACK, reg_id(3), "succeeded", "REGISTERED", "CANCELED"),
        (TRACK, reg_id(4), "failed", "REGISTERED", "CANCELED"),
        (OTHER_TRACK, reg_id(5), "succeeded", "REGISTERED", "CANCELED"),
        (TRACK, reg_id(6), "succeeded", "PENDING", "CANCELED"),
    ]
    now = {0: "CANCELED", 1: "CANCELED", 2: "CANCELED", 3: "CANCELED", 4: "REGISTERED", 5: "CANCELED", 6: "CANCELED"}
    known = [(EVENT, row[0], row[1], now[n]) for n, row in enumerate(rows)]
    return write_run_results(tmp_path / "run.results.csv", rows), known


def test_undo_puts_back_every_changed_row_grouped_by_its_previous_status(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results, known = changed_run(tmp_path)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known)
    summary = tmp_path / "undo.json"
    assert run_cli(undo_argv(results, box.url, "--summary-json", str(summary))) == 0
    state = box.state
    back = ["REGISTERED", "PENDING", "CANCELED", "REGISTERED", "REGISTERED", "PENDING"]
    assert [status(state, reg_id(n)) for n in (0, 1, 2, 3, 4, 6)] == back
    assert status(state, reg_id(5), OTHER_TRACK) == "REGISTERED"
    # one PUT per (event, track, status to put back), after the reads
    sent = sorted((request.path.split("/")[-2], json.dumps(request.json, sort_keys=True)) for request in state.puts)
    assert len(sent) == 3
    assert state.requests.index(state.puts[0]) >= len(state.reads)
    written = read_results(default_undo_path(results))
    assert default_undo_path(results).name == "run.results.undo.csv"
    assert list(written[0]) == list(HEADER)
    assert [(row["outcome"], row["previous_status"], row["target_status"]) for row in written] == [
        ("succeeded", "CANCELED", "REGISTERED"),
        ("succeeded", "CANCELED", "PENDING"),
        ("unchanged", "", ""),
        ("succeeded", "CANCELED", "REGISTERED"),
        ("unchanged", "", ""),
        ("succeeded", "CANCELED", "REGISTERED"),
        ("succeeded", "CANCELED", "PENDING"),
    ]
    assert written[2]["error"].startswith("nothing to undo") and written[4]["error"].startswith("nothing to undo")
    document = json.loads(summary.read_text())
    assert document["exit_code"] == 0 and document["results"] == str(default_undo_path(results))
    assert "CANCELED → REGISTERED 3" in capsys.readouterr().err


def test_a_registration_changed_since_the_run_fails_and_is_not_sent_unless_forced(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results, known = changed_run(tmp_path)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known)
    box.state.set_status(EVENT, TRACK, reg_id(3), "PENDING")  # someone else changed it since
    assert run_cli(undo_argv(results, box.url)) == 1
    written = read_results(default_undo_path(results))
    assert (written[3]["outcome"], written[3]["previous_status"], written[3]["target_status"]) == (
        "failed",
        "PENDING",
        "REGISTERED",
    )
    assert written[3]["error"] == "changed since the run (now PENDING); not undone; --force undoes it anyway"
    assert status(box.state, reg_id(3)) == "PENDING"
    assert all(reg_id(3) not in json.dumps(request.json) for request in box.state.puts)
    assert status(box.state, reg_id(0)) == "REGISTERED"  # the others were undone
    assert "--resume" in capsys.readouterr().err
    # --force: the changed one is put back too; the others already are (unchanged, not sent)
    box.state.requests.clear()
    forced = tmp_path / "forced.csv"
    assert run_cli(undo_argv(results, box.url, "--force", "--results", str(forced))) == 0
    assert status(box.state, reg_id(3)) == "REGISTERED"
    again = read_results(forced)
    assert (again[3]["outcome"], again[3]["previous_status"]) == ("succeeded", "PENDING")
    assert again[0]["outcome"] == "unchanged" and "already REGISTERED" in again[0]["error"]
    assert len(box.state.puts) == 1 and box.state.puts[0].json is not None
    assert reg_id(3) in json.dumps(box.state.puts[0].json)


def test_undo_of_an_undo_brings_back_the_runs_statuses(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    results, known = changed_run(tmp_path)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known)
    assert run_cli(undo_argv(results, box.url)) == 0
    first = default_undo_path(results)
    assert run_cli(undo_argv(first, box.url)) == 0
    assert [status(box.state, reg_id(n)) for n in (0, 1, 2, 3, 4, 6)] == [
        "CANCELED",
        "CANCELED",
        "CANCELED",
        "CANCELED",
        "REGISTERED",
        "CANCELED",
    ]
    assert status(box.state, reg_id(5), OTHER_TRACK) == "CANCELED"
    second = read_results(default_undo_path(first))
    assert default_undo_path(first).name == "run.results.undo.undo.csv"
    undone = "succeeded"
    assert [row["outcome"] for row in second] == [undone, undone, "unchanged", undone, "unchanged", undone, undone]
    assert {(row["previous_status"], row["target_status"]) for row in second if row["outcome"] == "succeeded"} == {
        ("REGISTERED", "CANCELED"),
        ("PENDING", "CANCELED"),
    }


def test_dry_run_reads_and_sends_nothing_and_shows_the_plan(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results, known = changed_run(tmp_path)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known)
    assert run_cli(undo_argv(results, box.url, "--dry-run")) == 0
    assert not box.state.requests
    assert not default_undo_path(results).exists()
    assert "3 requests" in capsys.readouterr().out


def test_rows_changed_without_a_previous_status_are_invalid_and_not_read_or_sent(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    rows = [
        (TRACK, reg_id(0), "succeeded", "", "CANCELED"),  # the run used --no-snapshot
        (TRACK, reg_id(1), "succeeded", "REGISTERED", "CANCELED"),
    ]
    results = write_run_results(tmp_path / "r.csv", rows)
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None), [(EVENT, TRACK, reg_id(n), "CANCELED") for n in (0, 1)]
    )
    assert run_cli(undo_argv(results, box.url)) == 1
    written = read_results(default_undo_path(results))
    assert (written[0]["outcome"], written[0]["error"]) == ("invalid", NO_PREVIOUS)
    assert written[1]["outcome"] == "succeeded"
    assert status(box.state, reg_id(0)) == "CANCELED" and status(box.state, reg_id(1)) == "REGISTERED"
    assert all(reg_id(0) not in json.dumps(request.json) for request in box.state.puts)
    assert run_cli(undo_argv(results, box.url, "--allow-invalid", "--results", str(tmp_path / "again.csv"))) == 0


def test_limit_then_resume_undoes_the_rest_without_reading_or_sending_twice(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    rows = [(TRACK, reg_id(n), "succeeded", "REGISTERED", "CANCELED") for n in range(6)]
    results = write_run_results(tmp_path / "r.csv", rows)
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None), [(EVENT, TRACK, reg_id(n), "CANCELED") for n in range(6)]
    )
    assert run_cli(undo_argv(results, box.url, "--limit", "2", "--batch-size", "1")) == 3
    assert [status(box.state, reg_id(n)) for n in range(6)] == ["REGISTERED"] * 2 + ["CANCELED"] * 4
    assert [row["outcome"] for row in read_results(default_undo_path(results))] == ["succeeded"] * 2 + ["pending"] * 4
    box.state.requests.clear()
    assert run_cli(undo_argv(results, box.url, "--resume", "--batch-size", "1")) == 0
    assert [status(box.state, reg_id(n)) for n in range(6)] == ["REGISTERED"] * 6
    assert len(box.state.puts) == 4
    written = read_results(default_undo_path(results))
    assert [(row["outcome"], row["previous_status"]) for row in written] == [("succeeded", "CANCELED")] * 6


def test_max_changes_refuses_after_the_reads_and_sends_nothing(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    results, known = changed_run(tmp_path)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known)
    assert run_cli(undo_argv(results, box.url, "--max-changes", "4")) == 2
    assert not box.state.puts


def test_reads_and_puts_together_keep_one_pace(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, pace_starts: PaceStarts
) -> None:
    """Every start, read or PUT, an interval after the one before (the pace's own starts: a strict sandbox window
    counted 429s that a loaded machine's scheduling made)."""
    results, known = changed_run(tmp_path)
    box = start_sandbox(registrations=known)
    assert run_cli(undo_argv(results, box.url, "--rate", "20")) == 0
    assert len(box.state.reads) == 2 and len(box.state.puts) == 3  # two phases, two clients, one pace
    assert len(pace_starts) == 5 and an_interval_apart(pace_starts)


def test_a_registration_gone_fails_without_a_put_and_a_duplicate_stays_one(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    rows = [
        (TRACK, reg_id(0), "succeeded", "REGISTERED", "CANCELED"),
        (TRACK, reg_id(0), "duplicate", "", "CANCELED"),
        (OTHER_TRACK, reg_id(1), "succeeded", "REGISTERED", "CANCELED"),
    ]
    results = write_run_results(tmp_path / "r.csv", rows)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), [(EVENT, TRACK, reg_id(0), "CANCELED")])
    assert run_cli(undo_argv(results, box.url)) == 1
    written = read_results(default_undo_path(results))
    assert [row["outcome"] for row in written] == ["succeeded", "unchanged", "failed"]
    assert written[1]["error"].startswith("nothing to undo")
    assert written[2]["error"] == "track not found in this event"  # the sandbox knows no such track
    assert len(box.state.puts) == 1


def test_a_file_that_is_not_a_results_file_is_refused(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None))
    path = write_csv(rows_for(2))
    summary = path.with_name("s.json")
    assert run_cli(undo_argv(path, box.url, "--summary-json", str(summary))) == 2
    assert "is not a batcher results file" in capsys.readouterr().err
    document = json.loads(summary.read_text())
    assert document["exit_code"] == 2 and "is not a batcher results file" in document["error"]
    assert not box.state.requests


def test_the_inputs_own_status_column_is_not_what_undo_sets(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "export.results.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("Event ID", "Track ID", "Registration ID", "Registration Status", *RESULT_COLUMNS))
        writer.writerow(
            [EVENT, TRACK, reg_id(0), "PENDING", "succeeded", "REGISTERED", "CANCELED", "200", "", "1", "1"]
        )
        writer.writerow([EVENT, TRACK, reg_id(1), "nonsense", "succeeded", "PENDING", "CANCELED", "200", "", "1", "1"])
    record_run(path)
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None), [(EVENT, TRACK, reg_id(n), "CANCELED") for n in (0, 1)]
    )
    code = run_cli(undo_argv(path, box.url))
    written = read_results(default_undo_path(path))
    assert [row["Registration Status"] for row in written] == ["PENDING", "nonsense"]  # the input's cells, as written
    assert status(box.state, reg_id(0)) == "REGISTERED"
    assert written[0]["target_status"] == "REGISTERED"
    # a status cell the loader cannot read does not matter: undo reads the result columns
    assert (code, written[1]["outcome"], written[1]["target_status"]) == (0, "succeeded", "PENDING")
    assert status(box.state, reg_id(1)) == "PENDING"


def test_nothing_to_undo_sends_nothing_and_exits_0(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    rows = [
        (TRACK, reg_id(0), "unchanged", "CANCELED", "CANCELED"),
        (TRACK, reg_id(1), "succeeded", "CANCELED", "CANCELED"),
        (TRACK, reg_id(2), "pending", "", "CANCELED"),
    ]
    results = write_run_results(tmp_path / "r.csv", rows)
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None), [(EVENT, TRACK, reg_id(n), "CANCELED") for n in range(3)]
    )
    assert run_cli(undo_argv(results, box.url)) == 0
    assert not box.state.requests
    written = read_results(default_undo_path(results))
    assert [row["outcome"] for row in written] == ["unchanged"] * 3
    assert all(row["error"].startswith("nothing to undo") for row in written)


def test_a_token_the_reads_refreshed_is_the_one_the_puts_use(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    results, known = changed_run(tmp_path)
    record_run(results, tmp_path / "state")  # the history of this --state-dir
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, token_expires_after=1), known)
    env = {
        "CTCT_ACCESS_TOKEN": sandbox.SANDBOX_TOKEN,
        "CTCT_REFRESH_TOKEN": sandbox.SANDBOX_REFRESH_TOKEN,
        "CTCT_CLIENT_ID": sandbox.SANDBOX_CLIENT_ID,
        "CTCT_TOKEN_URL": box.url.removesuffix("/v3") + sandbox.TOKEN_PATH,
    }
    args = ["undo", str(results), "--base-url", box.url, "--yes", "--state-dir", str(tmp_path / "state")]
    assert run_cli(args, env) == 0  # the refresh token rotates: the PUTs must not reuse the first one
    assert box.state.refreshes >= 2
    assert status(box.state, reg_id(0)) == "REGISTERED"


def test_a_canary_then_resume_keeps_the_canarys_previous_status_so_undo_restores_every_row(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    count = 60  # one track: the resumed run lists it, and the listing shows the canary rows already CANCELED
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None), [(EVENT, TRACK, reg_id(n), "REGISTERED") for n in range(count)]
    )
    path = tmp_path / "input.csv"
    path.write_text(
        "event_id,track_id,registration_id\n" + "".join(f"{EVENT},{TRACK},{reg_id(n)}\n" for n in range(count)),
        encoding="utf-8",
    )
    run = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes"]
    assert run_cli([*run, "--limit", "2"]) == 3
    assert run_cli([*run, "--resume"]) == 0
    results = tmp_path / "input.results.csv"
    assert {row["previous_status"] for row in read_results(results)} == {"REGISTERED"}  # the canary's too
    assert run_cli(undo_argv(results, box.url)) == 0
    assert {status(box.state, reg_id(n)) for n in range(count)} == {"REGISTERED"}
