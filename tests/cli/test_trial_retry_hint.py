"""After a run, the resume command is offered only for rows a retry can help (found in a user trial of main)."""

from __future__ import annotations

import pytest

from batcher.sandbox import app as sandbox
from tests.conftest import RunCli, StartSandbox, WriteCsv, cancel_argv, closed_port, known, rows_for

UNKNOWN_EVENT = "11111111-1111-4111-8111-111111111111"


@pytest.mark.parametrize("reads", [(), ("--no-snapshot",)])
def test_rows_of_an_unknown_event_are_not_offered_a_retry(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    capsys: pytest.CaptureFixture[str],
    reads: tuple[str, ...],
) -> None:
    rows = rows_for(2, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows + rows_for(2, event=UNKNOWN_EVENT, status="REGISTERED"))
    assert run_cli(cancel_argv(path, box.url, *reads)) == 1
    err = capsys.readouterr().err
    assert "--resume" not in err
    assert "to retry the failed rows" not in err
    fix = [line for line in err.splitlines() if "a retry cannot fix" in line]
    assert len(fix) == 1
    assert fix[0].startswith("batcher: 2 failed rows a retry cannot fix (")
    assert "event" in fix[0] and "not found" in fix[0]
    assert f"batcher report {path.with_name('input.results.csv')} --only failed --out FILE" in fix[0]


def test_a_failure_a_retry_can_fix_still_offers_the_resume_command(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(rows_for(2, status="REGISTERED"))
    assert run_cli(cancel_argv(path, f"http://127.0.0.1:{closed_port()}/v3", "--no-snapshot")) == 3
    err = capsys.readouterr().err
    assert "to send the rows not yet sent: batcher run" in err
    assert "a retry cannot fix" not in err


def test_mixed_failures_offer_the_retry_and_name_the_rows_to_fix(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(2, status="REGISTERED")
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, fail_ids=frozenset({rows[0][2].lower()})), known(rows))
    path = write_csv(rows + rows_for(2, event=UNKNOWN_EVENT, status="REGISTERED"))
    assert run_cli(cancel_argv(path, box.url, "--no-snapshot")) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("batcher: to retry the failed rows: batcher run ") for line in err)
    assert any(line.startswith("batcher: 2 failed rows a retry cannot fix (HTTP 404: event ") for line in err)
