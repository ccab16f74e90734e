"""Exit codes that fit a nightly job (issue 19): an API that cannot be reached stops the run (3) with the rows
pending and the daily count untouched; Ctrl-C at the confirmation prompt is an interruption (130)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.http.quota import QuotaLedger
from tests.conftest import RunCli, StartSandbox, closed_port, known, outcomes, rows_for


def cancel(path: Path, url: str, results: Path, state: Path, *extra: str) -> list[str]:
    words = ["run", str(path), "--status", "CANCELED", "--base-url", url, "--results", str(results)]
    return [*words, "--state-dir", str(state), "--no-progress", *extra]


def test_an_unreachable_api_stops_with_3_rows_pending_and_counts_no_request(
    run_cli: RunCli,
    write_csv: Callable[..., Path],
    start_sandbox: StartSandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = rows_for(5)
    path, results, state = write_csv(rows), tmp_path / "results.csv", tmp_path / "state"
    code = run_cli(cancel(path, f"http://127.0.0.1:{closed_port()}/v3", results, state, "--yes", "--no-snapshot"))
    err = capsys.readouterr().err
    assert code == 3, err
    assert "cannot be reached" in err and "--resume" in err
    assert set(outcomes(results)) == {"pending"}
    assert QuotaLedger(state, 10_000).used_today() == 0  # before: every attempt of every batch was counted
    box = start_sandbox(registrations=known(rows))
    assert run_cli(cancel(path, box.url, results, state, "--yes", "--no-snapshot", "--resume")) == 0
    assert set(outcomes(results)) == {"succeeded"}


class Interrupting:
    """A terminal's stdin where the user presses Ctrl-C at the prompt."""

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        raise KeyboardInterrupt


def test_ctrl_c_at_the_confirmation_prompt_exits_130(
    run_cli: RunCli,
    write_csv: Callable[..., Path],
    start_sandbox: StartSandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = rows_for(3)
    box = start_sandbox(registrations=known(rows))
    monkeypatch.setattr(sys, "stdin", Interrupting())
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code = run_cli(cancel(write_csv(rows), box.url, tmp_path / "results.csv", tmp_path / "state", "--no-snapshot"))
    err = capsys.readouterr().err
    assert code == 130, err  # before: 2, as if the user had answered no
    assert "interrupted" in err
    assert box.state.puts == []


def test_the_log_file_has_the_start_the_stop_and_the_exit_and_the_summary_the_error(
    run_cli: RunCli, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    log_file, summary = tmp_path / "night.log", tmp_path / "summary.json"
    url = f"http://127.0.0.1:{closed_port()}/v3"
    extra = ("--yes", "--no-snapshot", "--log-file", str(log_file), "--summary-json", str(summary))
    assert run_cli(cancel(write_csv(rows_for(2)), url, tmp_path / "r.csv", tmp_path / "state", *extra)) == 3
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert "start: batcher run " in lines[0]  # before: no line for the start, the stop or the exit
    assert any("stopped: the API at" in line and "cannot be reached" in line for line in lines)
    assert "end: exit 3" in lines[-1]
    assert "cannot be reached" in json.loads(summary.read_text())["error"]  # before: null, the text in "stopped"


def test_a_mistyped_input_path_is_said_as_such(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-folder" / "today.csv"
    assert run_cli(["run", str(missing), "--status", "CANCELED", "--sandbox"]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"batcher: error: {missing}: no such file. Check the path, or run 'ls' in that folder.\n"
    )  # before: --results


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from batcher import __version__  # noqa: PLC0415

    assert cli.main(["--version"], environ={}) == 0
    assert capsys.readouterr().out == f"batcher {__version__}\n"
