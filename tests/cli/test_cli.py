"""The command line end to end, in-process, against the sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections import Counter
from pathlib import Path

import openpyxl
import pytest

from batcher.input.earlier import RESULT_COLUMNS
from batcher.sandbox import app as sandbox
from tests.conftest import (
    EVENT,
    SAMPLES,
    TARGET_COLUMN,
    TRACK,
    RunCli,
    StartSandbox,
    WriteCsv,
    known,
    outcomes,
    read_results,
    reg_id,
    rows_for,
)


def test_sample_run_gives_every_row_its_outcome_and_matches_sandbox_state(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    registrations = sandbox.read_registrations(sandbox.DEFAULT_REGISTRATIONS)
    box = start_sandbox(registrations=registrations)  # the pace is tests/http/test_pacing.py's: no limit here
    results = tmp_path / "results.csv"
    code = run_cli(
        [
            "run",
            str(SAMPLES / "cancellations.csv"),
            "--status-column",
            "Registration Status",
            "--status",
            "CANCELED",
            "--base-url",
            box.url,
            "--results",
            str(results),
            "--yes",
            "--no-progress",
        ]
    )
    assert code == 1  # the sample holds invalid rows and ids the sandbox does not know
    with (SAMPLES / "cancellations.csv").open(newline="", encoding="utf-8") as handle:
        inputs = list(csv.DictReader(handle))
    rows = read_results(results)
    assert [row["Registration ID"] for row in rows] == [row["Registration ID"] for row in inputs]
    assert Counter(row["outcome"] for row in rows) == {"succeeded": 305, "failed": 6, "invalid": 4, "duplicate": 1}
    assert len(box.state.puts) == 6  # the reads find the track gone9 missing: none of its rows is sent
    succeeded = {(r["Event ID"], r["Track ID"], r["Registration ID"]) for r in rows if r["outcome"] == "succeeded"}
    for item in registrations:
        key = (item.event_id, item.track_id, item.registration_id)
        assert box.state.status_of(*key) == ("CANCELED" if key in succeeded else item.registration_status)
    for row in rows:
        if row["outcome"] in ("failed", "invalid"):
            assert row["error"], row


def test_sandbox_flag_runs_without_a_token(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(rows_for(5))
    assert run_cli(["run", *TARGET_COLUMN, str(path), "--sandbox", "--no-progress"], env={}) == 0
    rows = read_results(path.with_name("input.results.csv"))
    assert [row["outcome"] for row in rows] == ["succeeded"] * 5
    assert "5 succeeded" in capsys.readouterr().err


def test_missing_registration_id_column_exits_2_and_sends_nothing(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox()
    path = write_csv([[EVENT, TRACK]], header=["Event ID", "Track ID"])
    assert run_cli(["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes"]) == 2
    assert capsys.readouterr().err == (
        f'batcher: error: {path}: no "registration_id" column (found: Event ID, Track ID). '
        "Headers match ignoring case, spaces, dashes and underscores; "
        "or name the column with --column registration_id=HEADER. "
        "Or name people by email: an Email column, or --column email_address=HEADER.\n"
    )
    assert box.state.requests == []


def test_without_a_track_id_column_rows_take_the_default_track(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv
) -> None:
    box = start_sandbox(registrations=[(EVENT, TRACK, reg_id(1), "REGISTERED")])
    path = write_csv([[EVENT, reg_id(1)]], header=["Event ID", "Registration ID"])
    results = path.with_suffix(".results.csv")
    args = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
    assert run_cli([*args, "--results", str(results)]) == 0
    assert read_results(results)[0]["error"] == f"track {TRACK}, the event's default"
    assert box.state.status_of(EVENT, TRACK, reg_id(1)) == "CANCELED"
    # the event's default track, then the snapshot's read of the registration (resolving reads no list here)
    assert [read.path for read in box.state.reads] == [
        f"/v3/events/{EVENT}",
        f"/v3/events/{EVENT}/tracks/{TRACK}/registrations/{reg_id(1)}",
    ]


def test_no_token_exits_2_and_says_how_to_set_one(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["run", *TARGET_COLUMN, str(write_csv(rows_for(1)))], env={}) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "batcher: error: no access token: run 'batcher login' once (see docs/login.md), or set CTCT_ACCESS_TOKEN"
    )
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--batch-size", "900"], "--batch-size must be between 1 and 500 (got 900)"),
        (["--rate", "0"], "--rate must be above 0"),
        (["--base-url", "http://api.example.com/v3"], "is plain http"),
        (["--status", "Refunded"], "--status 'Refunded' is not a known status"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    assert run_cli(["run", *TARGET_COLUMN, str(write_csv(rows_for(1))), *option]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_401_stops_with_exit_3_and_unsent_rows_pending(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(4)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, token="other"), known(rows))
    path = write_csv(rows)
    code = run_cli(
        [
            "run",
            *TARGET_COLUMN,
            str(path),
            "--base-url",
            box.url,
            "--batch-size",
            "1",
            "--concurrency",
            "1",
            "--yes",
        ]
    )
    assert code == 3
    outcomes = [row["outcome"] for row in read_results(path.with_name("input.results.csv"))]
    assert outcomes == ["pending"] * 4
    err = capsys.readouterr().err
    assert "rejected the access token" in err
    assert sandbox.SANDBOX_TOKEN not in err


def test_404_fails_every_row_of_the_group(run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv) -> None:
    good = rows_for(2)
    lost = rows_for(3, track="gone1")
    box = start_sandbox(registrations=known(good))
    path = write_csv(
        good + [[e, t, f"00000000-0000-4000-9000-00000000000{n}", s] for n, (e, t, _, s) in enumerate(lost)]
    )
    args = ["run", *TARGET_COLUMN, str(path), "--base-url", box.url, "--yes"]
    assert run_cli([*args, "--no-snapshot"]) == 1
    rows = read_results(path.with_name("input.results.csv"))
    assert [row["outcome"] for row in rows] == ["succeeded"] * 2 + ["failed"] * 3
    assert all(row["http_status"] == "404" and "not found" in row["error"] for row in rows[2:])
    puts = len(box.state.puts)
    assert run_cli(args) == 1  # the reads are the preflight: the missing track fails without a PUT
    rows = read_results(path.with_name("input.results.csv"))
    assert [row["outcome"] for row in rows] == ["unchanged"] * 2 + ["failed"] * 3
    assert all(row["error"] == "track not found in this event" for row in rows[2:])
    assert len(box.state.puts) == puts


def test_plan_prints_groups_and_request_count_and_sends_nothing(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(250) + rows_for(10, track="other") + [[EVENT, TRACK, "bad", "CANCELED"]]
    assert run_cli(["plan", *TARGET_COLUMN, str(write_csv(rows)), "--batch-size", "100"], env={}) == 1
    out = capsys.readouterr().out
    assert "261 rows: 260 valid, 1 invalid, 0 duplicate" in out
    assert 'row 262: registration_id is not a UUID: "bad"' in out
    assert f"{EVENT}  {TRACK:10}  CANCELED         250         3" in out
    assert "this run: 260 registrations in 4 requests of up to 100 IDs" in out
    assert "1 event, 2 tracks; registrations: 260 to CANCELED" in out


def test_plan_exits_0_when_every_row_is_valid(run_cli: RunCli, write_csv: WriteCsv) -> None:
    assert run_cli(["plan", *TARGET_COLUMN, str(write_csv(rows_for(3)))], env={}) == 0
    assert run_cli(["run", *TARGET_COLUMN, "--dry-run", str(write_csv(rows_for(3)))], env={}) == 0


def test_every_row_invalid_exits_2_before_sending(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run_cli(
            [
                "run",
                *TARGET_COLUMN,
                str(write_csv([[EVENT, TRACK, "x", "CANCELED"]])),
                "--sandbox",
            ]
        )
        == 2
    )
    assert "every row is invalid" in capsys.readouterr().err


def test_python_m_batcher_help_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "batcher", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert "run" in done.stdout and "plan" in done.stdout and "sandbox" in done.stdout


# --- accepted inputs, end to end


def test_a_results_file_is_valid_input_and_only_retries_the_named_outcomes(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [[EVENT, TRACK, reg_id(n), "CANCELED", f"person {n}"] for n in range(5)]
    header = ["event_id", "track_id", "registration_id", "registration_status", "name"]
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None, fail_ids=frozenset({reg_id(1), reg_id(3)})), known(rows)
    )
    first = tmp_path / "first.csv"
    assert (
        run_cli(
            [
                "run",
                *TARGET_COLUMN,
                str(write_csv(rows, header=header)),
                "--base-url",
                box.url,
                "--yes",
                "--results",
                str(first),
            ]
        )
        == 1
    )
    assert [row["outcome"] for row in read_results(first)] == ["succeeded", "failed"] * 2 + ["succeeded"]
    box.scenario.fail_ids = frozenset()
    capsys.readouterr()

    second = tmp_path / "second.csv"
    code = run_cli(
        [
            "run",
            *TARGET_COLUMN,
            str(first),
            "--only",
            "failed,pending",
            "--base-url",
            box.url,
            "--yes",
            "--results",
            str(second),
        ]
    )
    assert code == 0
    with second.open(newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == [*header, *RESULT_COLUMNS]
    assert [(row["name"], row["outcome"]) for row in read_results(second)] == [
        ("person 1", "succeeded"),
        ("person 3", "succeeded"),
    ]
    assert box.state.puts[-1].json == {"registration_ids": [reg_id(1), reg_id(3)], "registration_status": "CANCELED"}
    assert "batcher: 3 rows skipped by --only; they are not in the results" in capsys.readouterr().err

    third = tmp_path / "third.csv"
    assert run_cli(["plan", *TARGET_COLUMN, str(second)], env={}) == 0
    assert (
        run_cli(
            [
                "run",
                *TARGET_COLUMN,
                str(second),
                "--base-url",
                box.url,
                "--yes",
                "--results",
                str(third),
            ]
        )
        == 0
    )
    assert len(next(csv.reader(third.open(newline="", encoding="utf-8")))) == len(header) + len(RESULT_COLUMNS)


def test_a_results_file_as_input_carries_its_succeeded_rows_over_unsent(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = rows_for(4)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, fail_ids=frozenset({reg_id(2)})), known(rows))
    first = tmp_path / "first.csv"
    assert (
        run_cli(
            [
                "run",
                *TARGET_COLUMN,
                str(write_csv(rows)),
                "--base-url",
                box.url,
                "--yes",
                "--results",
                str(first),
            ]
        )
        == 1
    )
    box.scenario.fail_ids = frozenset()
    sent = len(box.state.puts)
    assert run_cli(["plan", *TARGET_COLUMN, str(first)], env={}) == 0
    assert "3 rows succeeded in the results file given as input: carried over" in capsys.readouterr().out
    second = tmp_path / "second.csv"
    assert (
        run_cli(
            [
                "run",
                *TARGET_COLUMN,
                str(first),
                "--base-url",
                box.url,
                "--yes",
                "--results",
                str(second),
            ]
        )
        == 0
    )
    assert [put.json["registration_ids"] for put in box.state.puts[sent:]] == [[reg_id(2)]]
    assert outcomes(second) == ["succeeded"] * 4


def test_upper_case_ids_with_spaces_are_sent_in_canonical_form_and_kept_as_written(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(registrations=known([[EVENT, TRACK, reg_id(1)]]))
    path = tmp_path / "upper.csv"
    path.write_text(
        f"Event ID,Track ID,Registration ID,Status\n {EVENT.upper()} ,{TRACK} ,{reg_id(1).upper()},Cancelled\n"
    )
    code = run_cli(["run", "--status-column", "Status", str(path), "--base-url", box.url, "--yes"])
    assert code == 0
    put = box.state.puts[0]
    assert put.path == f"/v3/events/{EVENT}/tracks/{TRACK}/registrations"
    assert put.json == {"registration_ids": [reg_id(1)], "registration_status": "CANCELED"}
    row = read_results(path.with_name("upper.results.csv"))[0]
    assert (row["Event ID"], row["Registration ID"], row["Status"]) == (
        f" {EVENT.upper()} ",
        reg_id(1).upper(),
        "Cancelled",
    )
    assert 'batcher: note: 1 row spelled the status "Cancelled"; sent as CANCELED' in capsys.readouterr().err


def test_a_cp1252_semicolon_export_runs_with_encoding_cp1252(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    rows = [[EVENT, TRACK, reg_id(n)] for n in range(2)]
    box = start_sandbox(registrations=known(rows))
    path = tmp_path / "excel.csv"
    lines = ["Event ID;Track ID;Registration ID;Name"] + [f"{e};{t};{r};Renée {n}" for n, (e, t, r) in enumerate(rows)]
    path.write_bytes("\r\n".join(lines).encode("cp1252") + b"\r\n")
    assert run_cli(["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes"]) == 2
    assert box.state.requests == []
    assert (
        run_cli(["run", str(path), "--status", "CANCELED", "--encoding", "cp1252", "--base-url", box.url, "--yes"]) == 0
    )
    written = path.with_name("excel.results.csv").read_bytes()
    assert written.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark (Excel's "CSV UTF-8"), ";"-separated
    results = list(csv.DictReader(io.StringIO(written.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert [row["Name"] for row in results] == ["Renée 0", "Renée 1"]


def test_an_xlsx_sheet_runs_and_its_results_are_csv(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    rows = [[EVENT, TRACK, reg_id(n)] for n in range(3)]
    box = start_sandbox(registrations=known(rows))
    book = openpyxl.Workbook()
    book.active.append(["nothing here"])  # type: ignore[union-attr]
    sheet = book.create_sheet("Cancel")
    sheet.append(["Evt", "Trk", "Reg", "Seats"])
    for row in rows:
        sheet.append([*row, 2.0])
    path = tmp_path / "export.xlsx"
    book.save(path)
    args = ["run", str(path), "--sheet", "Cancel", "--status", "CANCELED", "--base-url", box.url, "--yes"]
    columns = ["--column", "event_id=Evt", "--column", "track_id=Trk", "--column", "registration_id=Reg"]
    assert run_cli(args + columns) == 0
    results = read_results(path.with_name("export.results.csv"))
    assert [(row["Reg"], row["Seats"], row["outcome"]) for row in results] == [
        (r, "2", "succeeded") for _, _, r in rows
    ]
