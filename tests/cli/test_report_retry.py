"""report --only on a run with nothing left to retry says so, instead of a command that runs an empty file."""

from __future__ import annotations

from pathlib import Path

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


def test_the_rows_to_run_again_keep_the_results_separator_and_byte_order_mark(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    rows = rows_for(3, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    path = tmp_path / "excel.csv"  # as German Excel saves "CSV UTF-8": a byte-order mark and semicolons
    lines = ["event_id;track_id;registration_id;registration_status", *(";".join(row) for row in rows)]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    assert run_cli(cancel_argv(path, box.url, "--limit", "1")) == 3
    results, retry = path.with_name("excel.results.csv"), tmp_path / "retry.csv"
    assert results.read_bytes().startswith(b"\xef\xbb\xbfevent_id;")
    assert run_cli(["report", str(results), "--only", "pending", "--out", str(retry)]) == 1
    assert retry.read_bytes().startswith(b"\xef\xbb\xbfevent_id;track_id;")  # before: "," and no mark
