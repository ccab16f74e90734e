"""report --only on a run with nothing left to retry says so, instead of a command that runs an empty file."""

from __future__ import annotations

import pytest

from tests.conftest import RunCli, StartSandbox, WriteCsv, cancel_argv, known, rows_for


def test_nothing_failed_or_pending_prints_no_command(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(3, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    assert run_cli(cancel_argv(path, box.url)) == 0
    results, retry = path.with_name(path.stem + ".results.csv"), path.with_name("retry.csv")
    capsys.readouterr()
    assert run_cli(["report", str(results), "--only", "failed,pending", "--out", str(retry)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"no row is failed or pending: nothing to run again ({retry} holds only the header)"
    assert "batcher run" not in out
    assert len(retry.read_text("utf-8").splitlines()) == 1


def test_a_canary_s_pending_rows_print_the_command_that_sends_them(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(3, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    assert run_cli(cancel_argv(path, box.url, "--limit", "1")) == 3
    results, retry = path.with_name(path.stem + ".results.csv"), path.with_name("retry.csv")
    capsys.readouterr()
    assert run_cli(["report", str(results), "--only", "failed,pending", "--out", str(retry)]) == 1  # rows pending
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"2 rows (failed,pending) written to {retry}; run them with: batcher run {retry} --status CANCELED"
    )
    assert run_cli(cancel_argv(retry, box.url)) == 0
    assert [box.state.status_of(row[0], row[1], row[2].lower()) for row in rows] == ["CANCELED"] * 3
