"""The one session owner (http/session.py): the state folder, the token, the quota ledger and the client of every
command, and `run --verify` reading on the run's own session."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from batcher.errors import UsageError
from batcher.http import auth
from batcher.http import session as session_module
from batcher.http.auth import Credentials
from batcher.http.session import Session, SessionOptions
from batcher.models import WireStats
from batcher.sandbox import app as sandbox
from batcher.settings import Settings
from tests.conftest import TOKEN_ENV, RunCli, StartSandbox, WriteCsv, known, rows_for

FAST = ["--rate", "1000", "--no-progress"]


def test_a_session_holds_the_token_the_state_folder_and_the_ledger(tmp_path: Path) -> None:
    options = SessionOptions(Settings(), daily_quota=50, state_dir=tmp_path / "state")
    with Session(options, TOKEN_ENV) as session:
        assert session.state_dir == tmp_path / "state"
        assert session.credentials is not None and session.credentials.has_access_token
        assert session.ledger is not None and session.ledger.daily_quota == 50
        assert session.stats(WireStats()).quota_left == 50
    with Session(options, {}, credentials=False, ledger=False) as bare:
        assert bare.credentials is None and bare.ledger is None
        with pytest.raises(ValueError, match="credentials are needed"):
            bare.client()
    with pytest.raises(UsageError):
        Session(options, {})  # no token anywhere


def test_a_saved_token_is_told_once_per_session(tmp_path: Path) -> None:
    with Session(SessionOptions(Settings(), state_dir=tmp_path), TOKEN_ENV) as session:
        assert session.credentials is not None
        assert session.notices() == ()
        session.credentials.saved_notice = "the rotated refresh token was saved"
        assert session.notices() == ("the rotated refresh token was saved",)
        assert session.notices() == ()  # run --verify does not say it again


def test_run_verify_loads_the_token_once_and_reads_on_the_runs_session(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [row[:3] for row in rows_for(3)]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known(rows))
    path = write_csv(rows, header=("event_id", "track_id", "registration_id"))
    loads: list[Mapping[str, str]] = []
    real_load = auth.load_credentials

    def counted(environ: Mapping[str, str], **kwargs: object) -> Credentials:
        loads.append(environ)
        return real_load(environ, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(session_module, "load_credentials", counted)
    args = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--verify", *FAST]
    assert run_cli(args) == 0
    assert len(loads) == 1  # the run's session; the read back used it too
    assert sum(request.method == "GET" for request in box.state.requests) >= 1  # it did read back
