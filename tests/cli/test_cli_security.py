"""What goes out: the token never leaks, never travels in clear text, and the results cannot run a formula."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest

from batcher.http.auth import Credentials
from batcher.sandbox import app as sandbox
from batcher.support.csvtext import FORMULA_PREFIXES
from tests.conftest import (
    EVENT,
    TARGET_COLUMN,
    TRACK,
    RunCli,
    StartSandbox,
    WriteCsv,
    closed_port,
    known,
    reg_id,
    rows_for,
)

TOKEN = "tok-9Zq4-SECRET-VALUE-do-not-leak-7f3a"


def leaked_in(*texts: str) -> list[str]:
    """The texts that hold the token, or the part of it after the first dash."""
    return [text for text in texts if TOKEN in text or TOKEN.split("-", 1)[1] in text]


def test_token_stays_out_of_output_results_and_logs_on_a_401(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    rows = rows_for(3)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, token="another-token"), known(rows))
    results = tmp_path / "results.csv"
    code = run_cli(
        [
            "run",
            *TARGET_COLUMN,
            str(write_csv(rows)),
            "--base-url",
            box.url,
            "--yes",
            "--results",
            str(results),
        ],
        {"CTCT_ACCESS_TOKEN": TOKEN},
    )
    assert code == 3
    assert box.state.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"  # it was sent, to the API only
    out, err = capsys.readouterr()
    assert "rejected the access token" in err
    assert leaked_in(out, err, results.read_text(encoding="utf-8"), caplog.text) == []


def test_token_stays_out_of_output_results_and_logs_on_connection_errors(
    run_cli: RunCli,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    results = tmp_path / "results.csv"
    url = f"http://127.0.0.1:{closed_port()}/v3"
    code = run_cli(
        [
            "run",
            *TARGET_COLUMN,
            str(write_csv(rows_for(2))),
            "--base-url",
            url,
            "--yes",
            "--rate",
            "1000",
            "--results",
            str(results),
        ],
        {"CTCT_ACCESS_TOKEN": TOKEN},
    )
    assert code == 3  # an API that cannot be reached stops the run: nothing is wrong with the rows
    with results.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    assert {record["outcome"] for record in records} == {"pending"}
    out, err = capsys.readouterr()
    assert "cannot be reached" in err and "connection failed" in err and "--resume" in err
    assert leaked_in(out, err, results.read_text(encoding="utf-8"), caplog.text) == []


def test_credentials_never_show_the_token() -> None:
    credentials = Credentials(f"  {TOKEN}\n")
    assert TOKEN not in repr(credentials) and TOKEN not in str(credentials)
    assert credentials.redact(f"GET /?access_token={TOKEN} Authorization: Bearer {TOKEN}") == (
        "GET /?access_token=*** Authorization: Bearer ***"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://api.cc.email/v3",
        "HTTP://api.cc.email/v3",
        "http://127.0.0.1.example.com/v3",
        "http://localhost.example.com/v3",
        "http://10.0.0.7:8080/v3",
    ],
)
def test_plain_http_to_another_host_is_refused(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    code = run_cli(
        ["run", *TARGET_COLUMN, str(write_csv(rows_for(1))), "--base-url", url, "--yes"], {"CTCT_ACCESS_TOKEN": TOKEN}
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("batcher: error: --base-url ") and "plain http" in err and "--allow-insecure" in err
    assert TOKEN not in err


def test_plain_http_from_the_environment_is_refused_too(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"CTCT_ACCESS_TOKEN": TOKEN, "CTCT_BASE_URL": "http://api.cc.email/v3"}
    assert run_cli(["run", *TARGET_COLUMN, str(write_csv(rows_for(1))), "--yes"], env) == 2
    assert "plain http" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("http://127.0.0.1:8080/v3", []),
        ("http://127.3.4.5/v3", []),
        ("http://localhost:8080/v3", []),
        ("http://[::1]:8080/v3", []),
        ("http://api.cc.email/v3", ["--allow-insecure"]),
        ("https://api.cc.email/v3", []),
    ],
)
def test_loopback_https_or_allow_insecure_are_accepted(
    run_cli: RunCli, write_csv: WriteCsv, url: str, extra: list[str]
) -> None:
    assert run_cli(["plan", *TARGET_COLUMN, str(write_csv(rows_for(1))), "--base-url", url, *extra], {}) == 0


def test_no_cell_of_the_results_can_run_as_a_formula(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None, status=400, error_body='=HYPERLINK("http://evil.example","x")')
    )
    path = tmp_path / "input.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["event_id", "track_id", "registration_id", "=cmd|' /C calc'!A0"])
        writer.writerow([EVENT, TRACK, reg_id(1), "@SUM(1+1)*cmd|' /C calc'!A0"])
        writer.writerow([EVENT, "+evil", reg_id(2), "-2+3"])
    code = run_cli(
        ["run", str(path), "--no-snapshot", "--status", "CANCELED", "--base-url", box.url, "--yes"],
        {"CTCT_ACCESS_TOKEN": sandbox.SANDBOX_TOKEN},
    )
    assert code == 1
    with path.with_name("input.results.csv").open(newline="", encoding="utf-8") as handle:
        records = list(csv.reader(handle))
    assert records[0][3] == "'=cmd|' /C calc'!A0"
    assert records[1][3] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    error = records[0].index("error")
    assert records[1][error] == 'HTTP 400: =HYPERLINK("http://evil.example","x")'  # cannot start a formula
    assert records[2][1:4] == ["'+evil", reg_id(2), "'-2+3"]
    assert [cell for record in records for cell in record if cell.startswith(FORMULA_PREFIXES)] == []
