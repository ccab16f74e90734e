"""A --sandbox rehearsal says, last, that it was one: its other lines read like a real run's (found in a trial)."""

from __future__ import annotations

import pytest

from tests.conftest import RunCli, StartSandbox, WriteCsv, cancel_argv, known, outcomes, rows_for


def test_a_rehearsal_names_the_api_it_left_alone(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(3, status="REGISTERED")
    real = start_sandbox(registrations=known(rows))  # stands for the real API: the rehearsal must not touch it
    path = write_csv(rows)
    assert run_cli([*cancel_argv(path, real.url), "--sandbox"]) == 0
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == (
        f"batcher: rehearsal (--sandbox): a local emulator answered; nothing at {real.url} was read or changed. "
        "Run the same command without --sandbox to send."
    )
    assert outcomes(path.with_name(path.stem + ".results.csv")) == ["succeeded"] * 3
    assert [real.state.status_of(row[0], row[1], row[2].lower()) for row in rows] == ["REGISTERED"] * 3
    assert real.state.requests == []  # not one request reached it


def test_a_real_run_does_not_say_rehearsal(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(2, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    assert run_cli(cancel_argv(write_csv(rows), box.url)) == 0
    assert "rehearsal (--sandbox)" not in capsys.readouterr().err
    assert [box.state.status_of(row[0], row[1], row[2].lower()) for row in rows] == ["CANCELED"] * 2


def test_a_refused_rehearsal_does_not_say_to_send(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(3, status="REGISTERED")
    real = start_sandbox(registrations=known(rows))
    assert run_cli([*cancel_argv(write_csv(rows), real.url), "--sandbox", "--max-changes", "1"]) == 2
    err = capsys.readouterr().err
    assert "more than --max-changes 1; nothing was sent" in err
    assert "rehearsal (--sandbox)" not in err
