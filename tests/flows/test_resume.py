"""Crash safety end to end: journal, --resume, the results lock, signals and a SIGKILL mid-run."""

from __future__ import annotations

import csv
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batcher.results import history
from batcher.results.journal import read_applied, results_lock
from batcher.sandbox import app as sandbox
from tests.conftest import (
    BLIND,
    EVENT,
    ROOT,
    TARGET_COLUMN,
    TOKEN_ENV,
    TRACK,
    RunCli,
    RunningSandbox,
    StartSandbox,
    WriteCsv,
    known,
    outcomes,
    reg_id,
    rows_for,
)


def ids_sent(box: RunningSandbox, *, status: int | None = None, after: float = 0.0) -> list[str]:
    return [
        registration_id
        for put in box.state.puts
        if (status is None or put.status == status) and put.at >= after and isinstance(put.json, dict)
        for registration_id in put.json["registration_ids"]
    ]


def test_resume_after_a_bad_token_sends_only_what_was_pending(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(6)
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    args = [
        "run",
        *TARGET_COLUMN,
        str(path),
        "--base-url",
        box.url,
        "--batch-size",
        "2",
        "--yes",
    ]
    assert run_cli(args, env={"CTCT_ACCESS_TOKEN": "expired"}) == 3
    results = path.with_name("input.results.csv")
    assert outcomes(results) == ["pending"] * 6
    err = capsys.readouterr().err
    command = (
        f"batcher run {path} --status-column registration_status --base-url {box.url} --batch-size 2 --yes --resume"
    )
    assert f"to send the rows not yet sent: {command} --results {path.with_name('input.results.csv')}" in err
    assert run_cli([*args, "--resume"]) == 0
    assert outcomes(results) == ["succeeded"] * 6
    assert sorted(ids_sent(box, status=200)) == sorted(row[2] for row in rows)


def test_resume_skips_succeeded_rows_and_retries_failed_ones(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv
) -> None:
    rows = rows_for(4)
    box = start_sandbox(registrations=known(rows[:3]))  # the last one is unknown: 207
    path = write_csv(rows)
    args = ["run", *TARGET_COLUMN, str(path), "--base-url", box.url, "--yes"]
    assert run_cli(args) == 1
    box.state.add(rows[3][0], rows[3][1], rows[3][2])  # it exists now
    started = time.monotonic()
    assert run_cli([*args, "--resume"]) == 0
    assert ids_sent(box, after=started) == [rows[3][2]]
    results = path.with_name("input.results.csv")
    assert outcomes(results) == ["succeeded"] * 4
    with results.open(newline="") as handle:
        first = next(csv.DictReader(handle))
    # the reads find it CANCELED; the run's journal says it changed it: succeeded, not sent again
    assert (first["outcome"], first["previous_status"], first["attempts"], first["batch"]) == (
        "succeeded",
        "REGISTERED",
        "",
        "",
    )


def test_quota_exceeded_exits_3_with_the_reset_time_and_the_resume_command(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(5)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, daily_quota=2), known(rows))
    path = write_csv(rows)
    args = [
        "run",
        *BLIND,
        str(path),
        "--base-url",
        box.url,
        "--batch-size",
        "1",
        "--concurrency",
        "1",
        "--yes",
    ]
    assert run_cli(args) == 3
    assert outcomes(path.with_name("input.results.csv")) == ["succeeded"] * 2 + ["pending"] * 3
    err = capsys.readouterr().err
    assert "resets at 00:00 UTC" in err
    assert "--resume" in err
    assert len(box.state.puts) == 3  # two applied, one 429, nothing resent


def test_local_daily_quota_shows_in_plan_and_stops_the_run(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(3)
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    assert (
        run_cli(
            [
                "plan",
                *BLIND,
                str(path),
                "--batch-size",
                "1",
                "--daily-quota",
                "2",
            ]
        )
        == 0
    )
    assert "daily quota: about 3 requests needed, 2 of 2 left today" in capsys.readouterr().out
    args = [
        "run",
        *BLIND,
        str(path),
        "--base-url",
        box.url,
        "--batch-size",
        "1",
        "--concurrency",
        "1",
        "--yes",
    ]
    assert run_cli([*args, "--daily-quota", "2"]) == 3
    assert len(box.state.puts) == 2
    assert "--daily-quota" in capsys.readouterr().err


def test_a_second_run_on_the_same_results_path_is_refused(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(rows_for(1))
    with results_lock(path.with_name("input.results.csv")):
        assert run_cli(["run", *TARGET_COLUMN, str(path), "--sandbox", "--yes"]) == 2
    assert "another batcher run is writing" in capsys.readouterr().err


def test_the_lock_file_is_removed_at_the_end_and_a_held_one_still_refuses(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(rows_for(1))
    results = path.with_name("input.results.csv")
    assert run_cli(["run", *TARGET_COLUMN, str(path), "--sandbox", "--yes"]) == 0
    assert not results.with_name(results.name + ".lock").exists()
    with results_lock(results):
        assert run_cli(["run", *TARGET_COLUMN, str(path), "--sandbox", "--yes"]) == 2
    assert "another batcher run is writing" in capsys.readouterr().err
    assert not results.with_name(results.name + ".lock").exists()


def test_resume_with_nothing_to_resume_starts_fresh_with_a_note(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(rows_for(2))
    assert run_cli(["run", *TARGET_COLUMN, str(path), "--sandbox", "--resume"]) == 0
    assert "batcher: note: --resume: no earlier run wrote " in capsys.readouterr().err
    assert outcomes(path.with_name("input.results.csv")) == ["succeeded", "succeeded"]


def test_every_switch_has_a_no_form_that_beats_the_config_file(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "batcher.toml"
    config.write_text("resume = true\nyes = true\nsandbox = true\nallow-invalid = true\n", encoding="utf-8")
    args = ["run", "in.csv", "--config", str(config), "--print-config"]
    assert run_cli([*args, "--no-resume", "--no-yes", "--no-sandbox", "--no-allow-invalid"], {}) == 0
    out = capsys.readouterr().out
    for name in ("resume", "yes", "sandbox", "allow-invalid"):
        assert f"{name} = False  # flag" in out


def test_journal_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.journal"
    record = {"batch": 1, "event_id": "e", "track_id": "t", "registration_status": "CANCELED", "http_status": 200}
    path.write_text(
        json.dumps({"journal": 1}) + "\n" + json.dumps({**record, "applied": ["a", "b"]}) + "\n" + '{"batch": 2, "ev'
    )
    assert read_applied(path) == {("e", "t", "a", "CANCELED"): 200, ("e", "t", "b", "CANCELED"): 200}


def resume(box: RunningSandbox, path: Path, *, batch_size: int, state: Path) -> list[str]:
    """The same run again, with --resume (in the state folder of the subprocess runs)."""
    args = [
        "run",
        *TARGET_COLUMN,
        str(path),
        "--base-url",
        box.url,
        "--yes",
        "--resume",
        "--batch-size",
        str(batch_size),
    ]
    return [*args, "--state-dir", str(state)]


def journal_of(tmp_path: Path, results: Path) -> Path:
    """The journal of the latest run on results, in the run history of the subprocess runs' state folder."""
    run = history.latest_on(tmp_path / "state" / "batcher", results)
    assert run is not None
    return run.journal


def start_subprocess_run(box: RunningSandbox, path: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **TOKEN_ENV, "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-m",
        "batcher",
        "run",
        *TARGET_COLUMN,
        str(path),
        "--base-url",
        box.url,
        "--yes",
        "--no-progress",
    ]
    args += ["--batch-size", "1", "--rate", "40", "--concurrency", "2"]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_puts(box: RunningSandbox, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while len(box.state.puts) < count and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert len(box.state.puts) >= count, "the run did not get going"


def test_sigkill_mid_run_then_resume_resends_no_batch_that_had_succeeded(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = rows_for(120)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, latency_s=(0.01, 0.03)), known(rows))
    path = write_csv(rows)
    process = start_subprocess_run(box, path, tmp_path)
    wait_for_puts(box, 30, process)
    process.kill()
    process.wait(10)
    killed_at = time.monotonic()
    results = path.with_name("input.results.csv")
    journaled = {key[2] for key in read_applied(journal_of(tmp_path, results))}
    succeeded_before = set(ids_sent(box, status=200))
    assert len(journaled) >= 20
    assert run_cli(resume(box, path, batch_size=1, state=tmp_path / "state" / "batcher")) == 0
    resent = set(ids_sent(box, after=killed_at))
    assert not resent & journaled  # nothing the journal recorded went out again
    assert len(resent & succeeded_before) <= 2  # at most the requests in flight when it died (--concurrency 2)
    assert outcomes(results) == ["succeeded"] * 120
    assert all(box.state.status_of(r[0], r[1], r[2]) == "CANCELED" for r in rows)


def test_sigint_lets_in_flight_batches_finish_writes_pending_rows_and_exits_130(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = rows_for(120)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, latency_s=(0.05, 0.05)), known(rows))
    path = write_csv(rows)
    process = start_subprocess_run(box, path, tmp_path)
    wait_for_puts(box, 10, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err.decode()
    results = path.with_name("input.results.csv")
    first = outcomes(results)
    assert "pending" in first and "succeeded" in first
    assert set(first) <= {"pending", "succeeded"}
    assert b"Traceback" not in err
    sent_before = len(box.state.puts)
    assert run_cli(resume(box, path, batch_size=1, state=tmp_path / "state" / "batcher")) == 0
    assert len(box.state.puts) - sent_before == first.count("pending")
    assert outcomes(results) == ["succeeded"] * 120


def test_a_full_disk_stops_the_run_and_resume_completes_it(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = rows_for(200)
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)

    def small_disk() -> None:  # files may not grow past 8 KiB: writes then fail as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    env = {**os.environ, **TOKEN_ENV, "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-m",
        "batcher",
        "run",
        *BLIND,
        str(path),
        "--base-url",
        box.url,
        "--yes",
        "--no-progress",
    ]
    done = subprocess.run(
        [*args, "--batch-size", "5", "--rate", "200"],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "cannot be written" in done.stderr and "--resume" in done.stderr
    assert "Traceback" not in done.stderr
    results = path.with_name("input.results.csv")
    journaled = {key[2] for key in read_applied(journal_of(tmp_path, results))}
    assert 0 < len(journaled) < 200
    before = time.monotonic()
    assert run_cli(resume(box, path, batch_size=5, state=tmp_path / "state" / "batcher")) == 0
    assert not set(ids_sent(box, after=before)) & journaled
    # applied before the disk filled but not journaled: the reads find them CANCELED already
    assert set(outcomes(results)) <= {"succeeded", "unchanged"}
    assert all(box.state.status_of(EVENT, TRACK, reg_id(n)) == "CANCELED" for n in range(200))
