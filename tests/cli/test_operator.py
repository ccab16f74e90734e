"""Operator experience: config precedence, guard rails, the prompt, logs, progress lines, summaries, report."""

from __future__ import annotations

import csv
import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.cli.parser import option_table
from batcher.flows.options import run_options
from batcher.flows.render import run_lines
from batcher.flows.run import RunHooks, run_flow
from batcher.sandbox import app as sandbox
from tests.conftest import (
    BLIND,
    EVENT,
    ROOT,
    TARGET_COLUMN,
    TOKEN_ENV,
    TRACK,
    RunCli,
    StartSandbox,
    WriteCsv,
    history_files,
    known,
    outcomes,
    rows_for,
)


def print_config(args: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert cli.main(["run", "in.csv", "--print-config", *args], environ=env) == 0
    lines = capsys.readouterr().out.splitlines()
    return {line.split(" = ")[0]: line.split(" = ", 1)[1] for line in lines if " = " in line}


def test_flags_beat_environment_beat_config_beat_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "batcher.toml"
    config.write_text('batch-size = 50\nrate = 2.5\nconcurrency = 3\nstatus = "CANCELED"\nyes = true\n')
    env = {"BATCHER_RATE": "3", "BATCHER_CONCURRENCY": "6", "CTCT_BASE_URL": "https://env.example/v3"}
    shown = print_config(["--config", str(config), "--concurrency", "8"], env, capsys)
    assert shown["batch-size"] == f"50  # config {config}"
    assert shown["rate"] == "3.0  # env BATCHER_RATE"
    assert shown["concurrency"] == "8  # flag"
    assert shown["base-url"] == "'https://env.example/v3'  # env CTCT_BASE_URL"
    assert shown["yes"] == f"True  # config {config}"
    assert shown["timeout"] == "30.0  # default"


def test_print_config_masks_secrets(run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    env = {
        "CTCT_ACCESS_TOKEN": "s3cr3t-access",
        "CTCT_REFRESH_TOKEN": "s3cr3t-refresh",
        "CTCT_CLIENT_SECRET": "s3cr3t-cs",
    }
    assert run_cli(["run", "in.csv", "--print-config"], env) == 0
    out = capsys.readouterr().out
    assert "s3cr3t" not in out
    assert "CTCT_ACCESS_TOKEN: set (hidden)" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("speed = 3\n", "unknown option 'speed'"),
        ("rate = \n", "not valid TOML"),
        ("yes = 'sure'\n", "must be true or false"),
    ],
)
def test_bad_config_files_exit_2(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(content)
    assert run_cli(["run", "in.csv", "--config", str(config), "--print-config"], {}) == 2
    assert message in capsys.readouterr().err


def test_bad_environment_value_exits_2(run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["run", "in.csv", "--print-config"], {"BATCHER_BATCH_SIZE": "many"}) == 2
    assert "environment variable BATCHER_BATCH_SIZE" in capsys.readouterr().err


def test_max_changes_refuses_a_larger_run_and_sends_nothing(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(10)
    box = start_sandbox(registrations=known(rows))
    code = run_cli(
        [
            "run",
            *TARGET_COLUMN,
            str(write_csv(rows)),
            "--base-url",
            box.url,
            "--yes",
            "--max-changes",
            "9",
        ]
    )
    assert code == 2
    assert "would change 10 registrations, more than --max-changes 9" in capsys.readouterr().err
    assert box.state.puts == []  # the reads counted the real changes first
    assert (
        run_cli(
            [
                "run",
                *TARGET_COLUMN,
                str(write_csv(rows)),
                "--base-url",
                box.url,
                "--yes",
                "--max-changes",
                "10",
            ]
        )
        == 0
    )


def test_limit_runs_a_canary_and_resume_sends_the_rest(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(7) + rows_for(3, track="other")
    box = start_sandbox(registrations=known(rows))
    path = write_csv(rows)
    results = path.with_name("input.results.csv")
    args = [
        "run",
        *TARGET_COLUMN,
        str(path),
        "--base-url",
        box.url,
        "--yes",
        "--batch-size",
        "2",
    ]
    assert run_cli([*args, "--limit", "3"]) == 3
    assert outcomes(results) == ["succeeded"] * 3 + ["pending"] * 7
    err = capsys.readouterr().err
    assert (
        f"to send the rows not yet sent: batcher run {path} --status-column registration_status "
        f"--base-url {box.url} --yes --batch-size 2 --resume" in err
    )
    with results.open(newline="") as handle:
        assert "beyond --limit 3" in list(csv.DictReader(handle))[5]["error"]
    assert run_cli([*args, "--resume"]) == 0
    assert outcomes(results) == ["succeeded"] * 10
    assert sum(len(p.json["registration_ids"]) for p in box.state.puts) == 10  # type: ignore[index]


def run_in_terminal(args: list[str], answer: bytes, env: dict[str, str]) -> tuple[int, str]:
    """Run batcher with its stdin, stdout and stderr on a pseudo-terminal; type answer at the prompt."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "batcher", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 30
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        seen += os.read(leader, 4096)
    os.write(leader, answer)
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    code = process.wait(30)
    os.close(leader)
    return code, seen.decode(errors="replace")


@pytest.mark.parametrize(("answer", "code"), [(b"\n", 2), (b"no\n", 2), (b"y\n", 0)])
def test_prompt_in_a_terminal_defaults_to_no(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, answer: bytes, code: int
) -> None:
    rows = rows_for(3)
    box = start_sandbox(registrations=known(rows))
    env = {**os.environ, **TOKEN_ENV, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp_path / "s")}
    got, screen = run_in_terminal(
        ["run", *BLIND, str(write_csv(rows)), "--base-url", box.url],
        answer,
        env,
    )
    assert got == code, screen
    assert "this run: 3 registrations in 1 request of" in screen
    assert "daily quota: about 1 request needed" in screen
    assert f"Send 1 request to {box.url}? [y/N]" in screen  # asked whatever the answer
    assert len(box.state.puts) == (1 if code == 0 else 0)


def test_without_a_terminal_progress_is_logged_as_lines(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "run",
        *TARGET_COLUMN,
        str(write_csv(rows_for(4))),
        "--sandbox",
        "--batch-size",
        "1",
        "--rate",
        "100",
    ]
    assert run_cli([*args, "--progress-every", "0"], {}) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "progress:" in line]
    assert len(lines) == 5  # the read of the track's one page, then each PUT
    assert "progress: 4 of 4 registrations, 5 requests (1 list page read)" in lines[-1]


def test_json_logs_are_json_lines_with_batch_fields(
    run_cli: RunCli, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "run.log"
    args = [
        "run",
        *TARGET_COLUMN,
        str(write_csv(rows_for(3))),
        "--sandbox",
        "--batch-size",
        "2",
        "--rate",
        "100",
    ]
    assert run_cli([*args, "--log-format", "json", "--log-file", str(log_file), "-q"], {}) == 0
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    batches = [record for record in records if "batch" in record]
    assert [record["batch"] for record in batches] == [1, 2]
    assert {"event_id", "track_id", "http_status", "attempts", "duration_s", "time", "level"} <= set(batches[0])
    assert batches[0]["event_id"] == EVENT and batches[0]["track_id"] == TRACK
    assert "batch 1 done" not in capsys.readouterr().err  # -q keeps the per-batch lines out of stderr


def test_tokens_never_reach_logs_results_or_summaries(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = rows_for(3)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, token="right"), known(rows))
    path = write_csv(rows)
    files = {"log": tmp_path / "log.txt", "summary": tmp_path / "s.json"}
    env = {"CTCT_ACCESS_TOKEN": "wrong-secret-token"}
    args = [
        "run",
        *TARGET_COLUMN,
        str(path),
        "--base-url",
        box.url,
        "--yes",
        "-vv",
        "--log-file",
        str(files["log"]),
    ]
    assert run_cli([*args, "--summary-json", str(files["summary"])], env) == 3
    captured = capsys.readouterr()
    texts = [captured.out, captured.err, *(f.read_text() for f in files.values())]
    texts.append(path.with_name("input.results.csv").read_text())
    texts.extend(history_files().values())  # the run's journal and record, in the run history
    assert any(name.endswith("/journal") for name in history_files())
    assert not [text for text in texts if "wrong-secret-token" in text]


def test_summary_json_has_counts_requests_exit_code_and_paths(
    run_cli: RunCli, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = [*rows_for(3), [EVENT, TRACK, "bad", "CANCELED"]]
    summary = tmp_path / "summary.json"
    assert (
        run_cli(
            [
                "run",
                *BLIND,
                str(write_csv(rows)),
                "--sandbox",
                "--summary-json",
                str(summary),
            ],
            {},
        )
        == 1
    )
    document = json.loads(summary.read_text())
    assert document["exit_code"] == 1
    assert document["counts"] == {
        "succeeded": 3,
        "failed": 0,
        "invalid": 1,
        "duplicate": 0,
        "pending": 0,
        "unchanged": 0,
        "skipped": 0,
    }
    assert document["requests_sent"] == 1
    assert document["results"].endswith("input.results.csv")
    assert document["top_reasons"] == [{"reason": 'registration_id is not a UUID: "bad"', "rows": 1}]


def test_run_end_summary_names_tracks_reasons_and_the_retry_command(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(4)
    box = start_sandbox(registrations=known(rows[:2]))
    assert run_cli(["run", *TARGET_COLUMN, str(write_csv(rows)), "--base-url", box.url, "--yes"]) == 1
    err = capsys.readouterr().err
    assert "batcher: 4 rows: 2 succeeded, 2 failed, 0 invalid, 0 duplicate, 0 pending" in err
    assert f"  {EVENT}  {TRACK:10}          2          0        0       2        0        0" in err
    assert "        2  rejected by the API in a 207 response" in err
    assert "to retry the failed rows: batcher run" in err


def test_report_summarizes_a_results_file_and_extracts_rows_to_rerun(
    run_cli: RunCli, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [*rows_for(3), [EVENT, TRACK, "bad", "CANCELED"]]
    path = write_csv(rows, header=["Event ID", "Track ID", "Registration ID", "Registration Status"])
    assert run_cli(["run", *TARGET_COLUMN, str(path), "--sandbox"], {}) == 1
    capsys.readouterr()
    results = path.with_name("input.results.csv")
    retry = tmp_path / "retry.csv"
    assert cli.main(["report", str(results), "--only", "invalid,pending", "--out", str(retry)]) == 1
    out = capsys.readouterr().out
    assert "4 rows: 3 succeeded, 0 failed, 1 invalid, 0 duplicate, 0 pending" in out
    assert '1  registration_id is not a UUID: "bad"' in out
    with retry.open(newline="") as handle:
        extracted = list(csv.reader(handle))
    assert extracted == [
        ["Event ID", "Track ID", "Registration ID", "Registration Status"],
        [EVENT, TRACK, "bad", "CANCELED"],
    ]


def test_report_refuses_a_file_that_is_not_a_results_file(
    write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", str(write_csv(rows_for(1)))]) == 2
    assert "is not a batcher results file" in capsys.readouterr().err


def test_a_status_lookalike_column_is_named_in_a_note(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(rows_for(1), header=["event_id", "track_id", "registration_id", "Status"])
    assert run_cli(["plan", str(path), "--status", "CANCELED"], {}) == 0
    assert 'the column "Status" is not read (every row takes --status CANCELED)' in capsys.readouterr().err


def test_results_may_not_overwrite_the_input(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(rows_for(1))
    assert run_cli(["run", *TARGET_COLUMN, str(path), "--sandbox", "--results", str(path)], {}) == 2
    assert "is the input file" in capsys.readouterr().err


@pytest.mark.parametrize("page", ["README.md", "docs/nightly.md"])
def test_the_documented_cron_config_is_a_valid_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], page: str
) -> None:
    readme = (ROOT / page).read_text(encoding="utf-8")
    block = readme.split("    # /etc/batcher.toml\n", 1)[1].split("\n\n", 1)[0]
    config = tmp_path / "batcher.toml"
    config.write_text("\n".join(line[4:] for line in block.splitlines()) + "\n")
    shown = print_config(["--config", str(config)], {}, capsys)
    assert shown["max-changes"] == f"2000  # config {config}"
    assert shown["log-format"] == f"'json'  # config {config}"
    assert shown["token-file"].startswith("'/srv/batcher/tokens.json'")


@pytest.mark.parametrize("where", [".", "", "/", "folder", "missing/results.csv"])
def test_a_results_path_that_is_not_a_writable_file_is_refused_before_sending(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    rows = rows_for(2)
    box = start_sandbox(registrations=known(rows))
    (tmp_path / "folder").mkdir()
    results = where if where in (".", "", "/") else str(tmp_path / where)
    args = [
        "run",
        *TARGET_COLUMN,
        str(write_csv(rows)),
        "--base-url",
        box.url,
        "--yes",
        "--results",
        results,
    ]
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("batcher: error: --results ") and err.count("\n") == 1
    assert box.state.requests == []
    assert not list(tmp_path.glob("*.journal")) and not list(tmp_path.glob("*.lock"))


def test_plan_resume_with_a_folder_as_results_is_one_line(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run_cli(
            [
                "plan",
                *TARGET_COLUMN,
                str(write_csv(rows_for(1))),
                "--resume",
                "--results",
                ".",
            ],
            {},
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("batcher: error: --results '.' is a folder") and err.count("\n") == 1


def test_an_unwritable_summary_json_is_refused_before_sending(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = rows_for(2)
    box = start_sandbox(registrations=known(rows))
    summary = tmp_path / "no-such-folder" / "summary.json"
    args = [
        "run",
        *TARGET_COLUMN,
        str(write_csv(rows)),
        "--base-url",
        box.url,
        "--yes",
        "--summary-json",
        str(summary),
    ]
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert "--summary-json" in err and "does not exist" in err and err.count("\n") == 1
    assert box.state.requests == []


@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        (["--batch-size", "many"], {}, "the command line was refused"),
        ([], {"BATCHER_BATCH_SIZE": "many"}, "BATCHER_BATCH_SIZE"),
        (["--log-file", "/no/such/folder/log"], {}, "log"),
    ],
)
def test_summary_json_is_written_when_the_options_are_refused(
    run_cli: RunCli, write_csv: WriteCsv, tmp_path: Path, args: list[str], env: dict[str, str], error: str
) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text('{"exit_code": 0}\n')
    path = str(write_csv(rows_for(1)))
    assert run_cli(["run", *TARGET_COLUMN, path, "--sandbox", "--summary-json", str(summary), *args], env) == 2
    document = json.loads(summary.read_text())
    assert document["exit_code"] == 2 and error in document["error"]


@pytest.mark.parametrize(
    ("extra", "code", "error"),
    [
        (["--max-changes", "1"], 2, "more than --max-changes 1"),
        (["--batch-size", "900"], 2, "--batch-size must be between 1 and 500"),
        (["--dry-run"], 0, None),
        ([], 0, None),
    ],
)
def test_summary_json_is_written_on_every_exit_with_the_code_and_the_error(
    run_cli: RunCli, write_csv: WriteCsv, tmp_path: Path, extra: list[str], code: int, error: str | None
) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text('{"exit_code": 0, "stale": true}\n')  # last night's
    args = [
        "run",
        *TARGET_COLUMN,
        str(write_csv(rows_for(2))),
        "--sandbox",
        "--summary-json",
        str(summary),
        *extra,
    ]
    assert run_cli(args, {}) == code
    document = json.loads(summary.read_text())
    assert document["exit_code"] == code and "stale" not in document
    if error is None:
        assert document["error"] is None
    else:
        assert error in document["error"]


def test_one_of_a_thing_is_said_in_the_singular(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["plan", *BLIND, str(write_csv(rows_for(1)))], {}) == 0
    out = capsys.readouterr().out
    assert ": 1 row: 1 valid" in out
    assert "this run: 1 registration in 1 request of" in out
    assert "daily quota: about 1 request needed" in out
    assert (
        run_cli(
            [
                "run",
                *BLIND,
                str(write_csv(rows_for(1))),
                "--sandbox",
            ],
            {},
        )
        == 0
    )
    assert "batcher: 1 request in " in capsys.readouterr().err


def test_duplicates_of_succeeded_rows_are_not_reasons_rows_did_not_succeed(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [*rows_for(2), rows_for(1)[0], [EVENT, TRACK, "bad", "CANCELED"]]
    assert run_cli(["run", *TARGET_COLUMN, str(write_csv(rows)), "--sandbox"], {}) == 1
    err = capsys.readouterr().err
    reasons = err[err.index("most common reasons") :]
    assert "not a UUID" in reasons and "repeats row" not in reasons


def test_reports_retry_hint_names_status_when_the_file_has_no_status_column(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = rows_for(3)
    box = start_sandbox(registrations=known(rows[:2]))  # the third is unknown: it fails
    path = write_csv([row[:3] for row in rows], header=["event_id", "track_id", "registration_id"])
    assert run_cli(["run", str(path), "--base-url", box.url, "--yes", "--status", "CANCELED"]) == 1
    retry = tmp_path / "retry.csv"
    results = str(path.with_name("input.results.csv"))
    assert cli.main(["report", results, "--only", "failed", "--out", str(retry)]) == 1
    hint = capsys.readouterr().out.splitlines()[-1]
    assert hint.endswith(f"run them with: batcher run {retry} --status CANCELED")  # the target the run recorded
    command = hint.split("run them with: batcher ")[1].split()
    assert run_cli([*command, "--base-url", box.url, "--yes"]) == 1  # sent: unknown again
    assert "every row is invalid" not in capsys.readouterr().err


def test_allow_invalid_keeps_invalid_rows_in_the_results_but_exits_0(
    run_cli: RunCli, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv([*rows_for(2), [EVENT, TRACK, "bad", "CANCELED"]])
    summary = tmp_path / "summary.json"
    assert run_cli(["plan", *TARGET_COLUMN, str(path), "--allow-invalid"], {}) == 0
    assert run_cli(["plan", *TARGET_COLUMN, str(path)], {}) == 1
    args = [
        "run",
        *TARGET_COLUMN,
        str(path),
        "--sandbox",
        "--allow-invalid",
        "--summary-json",
        str(summary),
    ]
    assert run_cli(args, {}) == 0
    assert outcomes(path.with_name("input.results.csv")) == ["succeeded", "succeeded", "invalid"]
    assert json.loads(summary.read_text())["counts"]["invalid"] == 1
    assert run_cli(["run", *TARGET_COLUMN, str(path), "--sandbox"], {}) == 1


def test_print_config_names_the_client_id_and_the_token_url(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "batcher.toml"
    config.write_text('token-url = "https://login.example.com/token"\n', encoding="utf-8")
    assert run_cli(["run", "in.csv", "--config", str(config), "--print-config"], {}) == 0
    out = capsys.readouterr().out
    assert "CTCT_CLIENT_ID: not set" in out
    assert f"token-url = 'https://login.example.com/token'  # config {config}" in out
    env = {"CTCT_CLIENT_ID": "my-client", "CTCT_TOKEN_URL": "https://other.example.com/token"}
    assert run_cli(["run", "in.csv", "--config", str(config), "--print-config"], env) == 0
    out = capsys.readouterr().out
    assert "CTCT_CLIENT_ID: set (hidden)" in out
    assert "token-url = 'https://other.example.com/token'  # env CTCT_TOKEN_URL" in out


def test_the_token_url_may_come_from_the_config_file(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = rows_for(4)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, token_expires_after=1), registrations=known(rows))
    config = tmp_path / "batcher.toml"
    config.write_text(f'token-url = "{box.url.removesuffix("/v3")}{sandbox.TOKEN_PATH}"\n', encoding="utf-8")
    env = {
        "CTCT_ACCESS_TOKEN": sandbox.SANDBOX_TOKEN,
        "CTCT_REFRESH_TOKEN": sandbox.SANDBOX_REFRESH_TOKEN,
        "CTCT_CLIENT_ID": sandbox.SANDBOX_CLIENT_ID,
    }
    args = [
        "run",
        *TARGET_COLUMN,
        str(write_csv(rows)),
        "--base-url",
        box.url,
        "--yes",
        "--batch-size",
        "1",
        "--config",
        str(config),
    ]
    assert run_cli([*args, "--state-dir", str(tmp_path / "state")], env) == 0
    assert outcomes(tmp_path / "input.results.csv") == ["succeeded"] * 4


def test_the_rate_shown_never_exceeds_the_limit(run_cli: RunCli, write_csv: WriteCsv, tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    args = [
        "run",
        *BLIND,
        str(write_csv(rows_for(21))),
        "--sandbox",
        "--batch-size",
        "1",
        "--rate",
        "20",
    ]
    assert run_cli([*args, "--summary-json", str(summary)], {}) == 0
    document = json.loads(summary.read_text())
    assert document["requests_sent"] == 21
    assert 10 < document["requests_per_s"] <= 20  # 21 requests span 20 intervals


def test_what_the_command_line_prints_masks_the_environments_secrets(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "echoed-s3cr3t-refresh-token"
    rows = rows_for(1)
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None, statuses=[400], error_body=f"bad request; refresh_token={secret}"),
        registrations=known(rows),
    )
    env = {**TOKEN_ENV, "CTCT_REFRESH_TOKEN": secret}
    assert run_cli(["run", *TARGET_COLUMN, str(write_csv(rows)), "--base-url", box.url, "--yes"], env) == 1
    captured = capsys.readouterr()
    assert secret not in captured.err + captured.out
    assert "***" in captured.err


def test_a_summary_that_fails_only_at_the_end_is_said_and_the_run_keeps_its_exit_code(
    write_csv: WriteCsv, tmp_path: Path
) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    _, defaults = option_table()
    values = {**defaults, "sandbox": True, "summary_json": str(folder / "summary.json"), "status": "CANCELED"}
    path = write_csv(rows_for(2))
    options = run_options(values, command="run", input_path=path)

    def confirm(plan: object, quota: object) -> bool:
        folder.rmdir()  # the folder goes away while the run sends
        return True

    result = run_flow(options, {}, RunHooks(confirm=confirm))
    assert result.exit_code == 0
    assert "summary" in result.summary_error
    _, err = run_lines(result)
    assert err[-1].startswith("batcher: error: ") and err[-1].endswith("; the run's own exit code stands")


def test_results_format_is_a_typed_option_of_every_source(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["run", "in.csv", "--print-config"], {}) == 0
    assert "results-format = 'auto'  # default" in capsys.readouterr().out
    assert run_cli(["run", "in.csv", "--results-format", "excel", "--print-config"], {}) == 0
    assert "results-format = 'excel'  # flag" in capsys.readouterr().out
    assert run_cli(["run", "in.csv", "--results-format", "xls"], {}) == 2
    capsys.readouterr()
    assert run_cli(["run", "in.csv"], {"BATCHER_RESULTS_FORMAT": "xls"}) == 2
    assert "--results-format takes one of auto, csv, excel (got 'xls')" in capsys.readouterr().err
