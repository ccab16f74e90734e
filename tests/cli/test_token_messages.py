"""Where a rejected or unrefreshable token came from, and what to change there (found in a trial)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from batcher.defaults import SANDBOX_CLIENT_ID
from batcher.http.profiles import SavedLogin, save_login
from batcher.sandbox import app as sandbox
from tests.conftest import RunCli, StartSandbox, WriteCsv, cancel_argv, known, outcomes, rows_for, token_url


def test_a_stale_env_token_names_the_login_it_hides_and_unsetting_it_sends(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    rows = rows_for(3, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    state = tmp_path / "batcher-state"
    later = datetime.now(UTC) + timedelta(hours=20)
    save_login(state, SavedLogin(SANDBOX_CLIENT_ID, sandbox.SANDBOX_TOKEN, "", later, token_url(box)))
    path = write_csv(rows)
    argv = cancel_argv(path, box.url, "--state-dir", str(state))
    assert run_cli(argv, env={"CTCT_ACCESS_TOKEN": "yesterdays-token"}) == 3
    err = capsys.readouterr().err
    assert "CTCT_ACCESS_TOKEN (or CTCT_REFRESH_TOKEN) is set, so the profile's saved login is not used" in err
    assert "Run 'unset CTCT_ACCESS_TOKEN CTCT_REFRESH_TOKEN' to use the login, then re-run with --resume." in err
    assert "yesterdays-token" not in err
    assert run_cli([*argv, "--resume"], env={}) == 0
    assert outcomes(path.with_name(path.stem + ".results.csv")) == ["succeeded"] * 3


def test_without_a_login_the_env_token_s_rejection_says_how_to_give_another(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    rows = rows_for(1, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    argv = cancel_argv(write_csv(rows), box.url, "--state-dir", str(tmp_path / "empty-state"))
    assert run_cli(argv, env={"CTCT_ACCESS_TOKEN": "yesterdays-token"}) == 3
    err = capsys.readouterr().err
    assert "Get a new access token and set CTCT_ACCESS_TOKEN" in err
    assert "saved login" not in err


def test_a_refused_refresh_of_a_token_file_names_that_file_and_a_new_pair_there_resumes(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    rows = rows_for(2, status="REGISTERED")
    box = start_sandbox(registrations=known(rows))
    tokens = tmp_path / "tokens.json"
    tokens.write_text(
        json.dumps({"access_token": "old", "refresh_token": "spent", "client_id": SANDBOX_CLIENT_ID}), "utf-8"
    )
    path = write_csv(rows)
    argv = cancel_argv(path, box.url, "--token-file", str(tokens), "--token-url", token_url(box))
    assert run_cli(argv, env={}) == 3
    err = capsys.readouterr().err
    assert f"(invalid_grant). Put a new refresh_token (or access_token) in {tokens}, then re-run with --resume." in err
    assert "CTCT_REFRESH_TOKEN" not in err
    tokens.write_text(json.dumps({"access_token": sandbox.SANDBOX_TOKEN}), "utf-8")
    assert run_cli([*argv, "--resume"], env={}) == 0
    assert outcomes(path.with_name(path.stem + ".results.csv")) == ["succeeded"] * 2
