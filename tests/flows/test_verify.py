"""`batcher verify` end to end, in-process, against the sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from batcher.flows.verify import VERIFY_COLUMNS, default_verify_path, load_results, verify_results
from batcher.http.auth import Credentials
from batcher.http.client import ApiClient
from batcher.input.earlier import RESULT_COLUMNS
from batcher.remote.reads import getter
from batcher.sandbox import app as sandbox
from batcher.settings import Settings
from tests.conftest import (
    EVENT,
    TRACK,
    RunCli,
    StartSandbox,
    WriteCsv,
    cancel_argv,
    known,
    read_results,
    reg_id,
    rows_for,
)

OTHER_TRACK = "vip"


def cancel(path: Path, url: str, results: Path) -> list[str]:
    return cancel_argv(path, url, "--results", str(results))


def test_verify_passes_after_a_real_run_and_writes_the_results_plus_two_columns(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [row[:3] for row in rows_for(130)]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known(rows))
    path = write_csv(rows, header=("event_id", "track_id", "registration_id"))
    results = tmp_path / "input.results.csv"
    assert run_cli(cancel(path, box.url, results)) == 0
    box.state.requests.clear()
    capsys.readouterr()
    assert run_cli(["verify", str(results), "--base-url", box.url]) == 0
    out = default_verify_path(results)
    assert out.name == "input.results.verify.csv"
    written = read_results(out)
    assert list(written[0]) == ["event_id", "track_id", "registration_id", *RESULT_COLUMNS, *VERIFY_COLUMNS]
    assert {(row["current_status"], row["verified"]) for row in written} == {("CANCELED", "yes")}
    assert [row["registration_id"] for row in written] == [row[2] for row in rows]
    # one track of 130 rows: listing (3 pages of 50) beats 130 GETs, within 1 + min(pages - 1, rows)
    assert len(box.state.reads) == math.ceil(130 / 50) and not box.state.puts
    err = capsys.readouterr().err
    assert "verified 130 rows (outcome succeeded or unchanged): 130 yes, 0 no, 0 missing" in err
    assert f"verification: {out}" in err


def test_verify_catches_a_200_that_changed_nothing_and_a_registration_gone(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [*rows_for(6), *rows_for(2, track=OTHER_TRACK)]
    rows[6][2], rows[7][2] = reg_id(100), reg_id(101)
    scenario = sandbox.Scenario(rate_limit_per_s=None, silent_ids=frozenset({reg_id(2)}))
    box = start_sandbox(scenario, known(rows))
    path = write_csv(rows)
    results = tmp_path / "r.csv"
    assert run_cli(cancel(path, box.url, results)) == 0
    assert set(read_results(results)[n]["outcome"] for n in range(8)) == {"succeeded"}  # the server said so
    del box.state.registrations[(EVENT, TRACK)][reg_id(4)]  # someone deleted it since
    del box.state.registrations[(EVENT, OTHER_TRACK)]  # and a whole track
    out = tmp_path / "check.csv"
    capsys.readouterr()
    assert run_cli(["verify", str(results), "--base-url", box.url, "--out", str(out)]) == 1
    verdicts = [(row["registration_id"], row["current_status"], row["verified"]) for row in read_results(out)]
    assert verdicts == [
        (reg_id(0), "CANCELED", "yes"),
        (reg_id(1), "CANCELED", "yes"),
        (reg_id(2), "REGISTERED", "no"),
        (reg_id(3), "CANCELED", "yes"),
        (reg_id(4), "", "missing"),
        (reg_id(5), "CANCELED", "yes"),
        (reg_id(100), "", "missing"),
        (reg_id(101), "", "missing"),
    ]
    err = capsys.readouterr().err
    assert "8 rows (outcome succeeded or unchanged): 4 yes, 1 no, 3 missing" in err
    assert f"row 4: registration {reg_id(2)} is REGISTERED, not CANCELED" in err
    assert f"row 6: registration {reg_id(4)} was not found, not CANCELED" in err


def test_rows_that_did_not_succeed_are_not_read_and_stay_blank(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [*rows_for(3), [EVENT, TRACK, "not-a-uuid", "CANCELED"]]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, fail_ids=frozenset({reg_id(1)})), known(rows[:3]))
    results = tmp_path / "r.csv"
    assert run_cli(cancel(write_csv(rows), box.url, results)) == 1
    box.state.requests.clear()
    capsys.readouterr()
    assert run_cli(["verify", str(results), "--base-url", box.url]) == 0
    written = read_results(default_verify_path(results))
    assert [(row["outcome"], row["verified"]) for row in written] == [
        ("succeeded", "yes"),
        ("failed", ""),
        ("succeeded", "yes"),
        ("invalid", ""),
    ]
    assert len(box.state.reads) == 1  # two rows, one page
    assert "2 other rows not checked" in capsys.readouterr().err


def test_a_stop_is_exit_3_and_a_file_that_is_not_results_exit_2(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = rows_for(3)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known(rows))
    path = write_csv(rows)
    results = tmp_path / "r.csv"
    assert run_cli(cancel(path, box.url, results)) == 0
    box.scenario.status = 403
    assert run_cli(["verify", str(results), "--base-url", box.url]) == 3
    assert "refused to read" in capsys.readouterr().err
    assert not default_verify_path(results).exists()
    assert run_cli(["verify", str(path), "--base-url", box.url]) == 2
    assert "is not a batcher results file" in capsys.readouterr().err
    assert run_cli(["verify", str(results), "--out", str(results), "--base-url", box.url]) == 2


def test_verify_results_reads_through_any_client_the_way_run_verify_would(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = rows_for(2)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known(rows))
    results = tmp_path / "r.csv"
    assert run_cli(cancel(write_csv(rows), box.url, results)) == 0
    loaded = load_results(results)

    async def check() -> list[str]:
        settings = Settings(base_url=box.url, rate_per_s=500)
        async with ApiClient(settings, Credentials(sandbox.SANDBOX_TOKEN)) as client:
            verification = await verify_results(getter(client), box.url, loaded)
        return [str(value) for value in verification.verified.tolist()]

    assert asyncio.run(check()) == ["yes", "yes"]


def test_the_verification_follows_the_results_format(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(2)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known(rows))
    path = tmp_path / "semi.csv"
    path.write_text("Event ID;Track ID;Registration ID;Note\n" + "".join(f"{r[0]};{r[1]};{r[2]};=1+1\n" for r in rows))
    results = tmp_path / "semi.results.csv"
    words = ["--results-format", "excel"]
    assert (
        run_cli(
            [
                "run",
                str(path),
                "--status",
                "CANCELED",
                "--base-url",
                box.url,
                "--yes",
                "--results",
                str(results),
                *words,
            ]
        )
        == 0
    )
    assert run_cli(["verify", str(results), "--base-url", box.url]) == 0
    written = default_verify_path(results).read_bytes()
    assert written.startswith(b"\xef\xbb\xbfEvent ID;Track ID;Registration ID;Note;outcome;")
    assert written.splitlines()[1].decode().split(";")[3:4] == ["'=1+1"]  # escaped again, as in the results
    assert written.splitlines()[1].decode().endswith(";CANCELED;yes")


def test_a_run_gives_its_api_options_to_the_verify_after_it(tmp_path: Path) -> None:
    from batcher.cli.parser import option_table  # noqa: PLC0415
    from batcher.flows.options import read_options_of, run_options  # noqa: PLC0415

    _, defaults = option_table()
    values = {**defaults, "rate": 2.5, "state_dir": str(tmp_path), "no_progress": True}
    chosen = read_options_of(run_options(values, command="run", input_path=tmp_path / "in.csv"))
    assert (chosen.settings.rate_per_s, chosen.session.state_dir, chosen.progress) == (2.5, tmp_path, False)


def test_a_few_rows_of_a_long_track_are_read_one_by_one_within_the_bound(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = rows_for(1000)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known(rows))
    chosen = [rows[10], rows[500], rows[999]]
    results = tmp_path / "r.csv"
    assert run_cli(cancel(write_csv(chosen), box.url, results)) == 0
    box.state.requests.clear()
    assert run_cli(["verify", str(results), "--base-url", box.url]) == 0
    pages = math.ceil(1000 / 50)
    # the first page holds row 10; the two others are fetched one by one rather than listing 19 more pages
    assert len(box.state.reads) == 1 + 2 <= 1 + min(pages - 1, len(chosen))


def test_run_verify_reads_back_at_the_end_and_a_silent_200_makes_the_run_exit_1(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [row[:3] for row in rows_for(4)]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, silent_ids=frozenset({reg_id(2)})), known(rows))
    path = write_csv(rows, header=("event_id", "track_id", "registration_id"))
    results = tmp_path / "input.results.csv"
    args = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--results", str(results)]
    assert (
        run_cli([*args, "--verify"]) == 1
    )  # the run itself succeeded; the read back caught the registration untouched
    assert {row["outcome"] for row in read_results(results)} == {"succeeded"}
    verified = {row["registration_id"]: row["verified"] for row in read_results(default_verify_path(results))}
    assert verified == {reg_id(0): "yes", reg_id(1): "yes", reg_id(2): "no", reg_id(3): "yes"}
    err = capsys.readouterr().err
    assert "verified 4 rows (outcome succeeded or unchanged): 3 yes, 1 no, 0 missing" in err


def test_run_without_verify_reads_nothing_after_the_puts(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = [row[:3] for row in rows_for(4)]
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None), known(rows))
    path = write_csv(rows, header=("event_id", "track_id", "registration_id"))
    assert run_cli(cancel(path, box.url, tmp_path / "input.results.csv")) == 0
    last_put = max(index for index, request in enumerate(box.state.requests) if request.method == "PUT")
    assert all(request.method == "PUT" for request in box.state.requests[last_put:])
    assert not default_verify_path(tmp_path / "input.results.csv").exists()
