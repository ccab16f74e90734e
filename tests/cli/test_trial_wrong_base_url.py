"""A wrong --base-url (a plain web server's 404) says the status once (found in a user trial of main)."""

from __future__ import annotations

import pytest

from tests.conftest import RunCli, StartSandbox, WriteCsv, cancel_argv, known, rows_for


def test_a_wrong_base_url_says_the_status_once(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(2, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    root = box.url.rsplit("/", 1)[0] + "/"  # the sandbox's server, without the API's /v3
    assert run_cli([*cancel_argv(write_csv(rows), root), "--no-snapshot"]) == 3
    error = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("batcher: error: "))
    assert error.startswith(f"batcher: error: HTTP 404: Not Found from {root.rstrip('/')}/events/")
    assert "404: 404" not in error
    assert "the base URL looks wrong (check --base-url)" in error
