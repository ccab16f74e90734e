"""What a resumed run says about the rows its earlier attempt changed (found in a trial of the README's canary)."""

from __future__ import annotations

import pytest

from tests.conftest import RunCli, StartSandbox, WriteCsv, cancel_argv, known, outcomes, rows_for


def test_the_rows_the_canary_changed_are_named_and_not_called_a_disagreement(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(5, status="REGISTERED")  # an export: the status column says what each registration is now
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    results = path.with_name("gala.results.csv")
    assert run_cli(cancel_argv(path, box.url, "--limit", "2", "--results", str(results))) == 3
    capsys.readouterr()
    assert run_cli(cancel_argv(path, box.url, "--resume", "--results", str(results))) == 0
    err = capsys.readouterr().err
    assert "before sending: REGISTERED → CANCELED 3 · done earlier in this run 2 (not sent again)" in err
    assert "from → to: REGISTERED → CANCELED 3 · done earlier in this run 2 (not sent again)" in err
    assert "disagrees" not in err
    assert outcomes(results) == ["succeeded"] * 5
    assert [box.state.status_of(row[0], row[1], row[2].lower()) for row in rows] == ["CANCELED"] * 5


def test_a_registration_someone_else_changed_is_still_a_disagreement(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(3, status="REGISTERED")
    box = start_sandbox(registrations=[*known(rows[:2]), (*rows[2][:2], rows[2][2].lower(), "PENDING")])
    path = write_csv(rows)
    assert run_cli(cancel_argv(path, box.url)) == 0
    assert "disagrees with the API for 1 row (row 4: the file says REGISTERED, the API says PENDING)" in (
        capsys.readouterr().err
    )
