"""Separate processes: two runs refreshing one profile's tokens near expiry (one refresh only), and Ctrl-C in login.

Each process is a real `python -m batcher` against a sandbox served from this test's process on 127.0.0.1. What
the test waits for is a line the process writes, never a length of time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from batcher.http.profiles import LOGIN_NAME, SavedLogin, read_login, save_login, tokens_lock
from batcher.sandbox import app as sandbox
from tests.conftest import TEST_PACE, StartSandbox, WriteCsv, known, read_results, rows_for, token_url

LINE_LIMIT = 400  # lines read while waiting for the one expected


def environment(state: Path) -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if not name.startswith(("CTCT_", "BATCHER_"))}
    return {**kept, **TEST_PACE, "BATCHER_STATE_DIR": str(state)}


def wait_for_line(stream: IO[str], words: str) -> list[str]:
    """Read lines until one holds words; the lines read (fails if the process ends first)."""
    seen: list[str] = []
    for _ in range(LINE_LIMIT):
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if words in line:
            return seen
    raise AssertionError(f"never said {words!r}; said: {''.join(seen)}")


def test_two_processes_near_expiry_refresh_the_rotating_token_once(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = rows_for(4)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known(rows))
    box.state.access_token, box.state.refresh_token = "old-access-token", "old-refresh-token"
    folder = tmp_path / "profiles" / "shared"
    login = SavedLogin(
        client_id=sandbox.SANDBOX_CLIENT_ID,
        access_token="old-access-token",
        refresh_token="old-refresh-token",
        expires_at=datetime.now(UTC) + timedelta(seconds=60),  # inside the early-refresh margin
        token_url=token_url(box),
    )
    save_login(folder, login)
    path = write_csv(rows)
    processes = []
    with tokens_lock(folder):  # both processes must reach the lock before either may refresh
        for number in (1, 2):
            words = [sys.executable, "-m", "batcher", "run", str(path), "--status", "CANCELED", "--yes", "-v"]
            words += ["--profile", "shared", "--base-url", box.url, "--no-progress"]
            words += ["--results", str(tmp_path / f"run{number}.csv")]
            processes.append(
                subprocess.Popen(
                    words, env=environment(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
                )
            )
        for process in processes:
            assert process.stderr is not None
            wait_for_line(process.stderr, "another process is refreshing the tokens of this profile")
        assert box.state.refreshes == 0
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "invalid_grant" not in err and "Traceback" not in err
    assert box.state.refreshes == 1
    saved = read_login(folder)
    assert saved is not None
    assert (saved.access_token, saved.refresh_token) == (box.state.access_token, box.state.refresh_token)
    assert saved.expires_in_s() > 80_000
    for number in (1, 2):
        assert {row["outcome"] for row in read_results(tmp_path / f"run{number}.csv")} <= {"succeeded", "unchanged"}
    assert {put.headers["Authorization"] for put in box.state.puts} == {f"Bearer {box.state.access_token}"}


def test_ctrl_c_while_login_waits_exits_130_in_one_line_and_saves_nothing(
    start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, device_interval_s=1))
    words = [sys.executable, "-m", "batcher", "login", "--client-id", sandbox.SANDBOX_CLIENT_ID, "--no-browser"]
    process = subprocess.Popen(
        [*words, "--token-url", token_url(box)],
        env=environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    wait_for_line(process.stderr, "Waiting for the approval")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "batcher: login interrupted; nothing was saved"
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / LOGIN_NAME).exists()
