"""Hints name only options the command accepts (issue 19): undo, verify and report do not suggest --encoding, undo's
plan does not suggest --no-snapshot, and verify's stop messages do not say --resume."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batcher.cli.parser import REFUSED, build_parser
from tests.conftest import EVENT, TRACK, RunCli, RunningSandbox, StartSandbox, WriteCsv, reg_id, undo_argv

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def accepted(command: str) -> set[str]:
    flags = build_parser().commands()[command].long_flags()
    return {flag for flag in flags if flag not in REFUSED.get(command, ())}


def named(text: str) -> set[str]:
    return set(FLAG.findall(text))


def _a_run(run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv) -> tuple[RunningSandbox, Path]:
    box = start_sandbox(registrations=[(EVENT, TRACK, reg_id(n), "REGISTERED") for n in range(3)])
    path = write_csv([[EVENT, TRACK, reg_id(n), "CANCELED"] for n in range(3)])
    assert run_cli(["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]) == 0
    return box, path.with_name("input.results.csv")


def test_undos_plan_does_not_suggest_no_snapshot_which_undo_refuses(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    box, results = _a_run(run_cli, start_sandbox, write_csv)
    capsys.readouterr()
    assert run_cli(undo_argv(results, box.url, "--dry-run")) == 0
    said = capsys.readouterr()
    assert "reads first" in said.out + said.err  # the line that used to end "--no-snapshot sends without reading"
    assert "--no-snapshot" not in said.out + said.err
    assert named(said.out + said.err) <= accepted("undo")


@pytest.mark.parametrize("command", ["undo", "verify", "report"])
def test_a_results_file_in_cp1252_is_refused_without_naming_encoding_where_the_command_has_none(
    command: str,
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    capsys: pytest.CaptureFixture[str],
) -> None:
    box, results = _a_run(run_cli, start_sandbox, write_csv)
    results.write_bytes(results.read_bytes() + "café\n".encode("cp1252"))
    capsys.readouterr()
    extra = [] if command == "report" else ["--base-url", box.url]
    assert run_cli([command, str(results), *extra]) == 2
    err = capsys.readouterr().err
    assert "not valid UTF-8" in err
    assert "CSV UTF-8" in err
    assert "--encoding" not in err
    assert named(err) <= accepted(command)


def test_run_still_suggests_encoding(write_csv: WriteCsv, run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv([[EVENT, TRACK, reg_id(0), "CANCELED"]])
    path.write_bytes(path.read_bytes() + "café\n".encode("cp1252"))
    assert run_cli(["plan", str(path), "--status", "CANCELED"]) == 2
    assert "--encoding cp1252" in capsys.readouterr().err


def test_a_rejected_token_stops_verify_without_suggesting_resume_which_verify_has_not(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    box, results = _a_run(run_cli, start_sandbox, write_csv)
    capsys.readouterr()
    code = run_cli(["verify", str(results), "--base-url", box.url], env={"CTCT_ACCESS_TOKEN": "not-the-token"})
    err = capsys.readouterr().err
    assert code == 3, err
    assert "rejected the access token" in err
    assert "--resume" not in err
    assert "run the command again" in err
    assert named(err) <= accepted("verify")


def test_a_rejected_token_stops_run_with_the_resume_hint(
    run_cli: RunCli, start_sandbox: StartSandbox, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(registrations=[(EVENT, TRACK, reg_id(0), "REGISTERED")])
    path = write_csv([[EVENT, TRACK, reg_id(0), "CANCELED"]])
    argv = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
    assert run_cli(argv, env={"CTCT_ACCESS_TOKEN": "not-the-token"}) == 3
    assert "re-run with --resume" in capsys.readouterr().err


def test_undo_help_gives_one_default_for_results(run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["undo", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert ".results.csv in place of its suffix" not in text  # run's default, not undo's
    assert text.count(".undo.csv") == 1
    assert "--results PATH results CSV (default: the undone run's results path with .undo.csv in place of .csv)" in text


def test_no_access_token_for_export_does_not_offer_the_sandbox_it_refuses(
    run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by hand: `export` without a token said "or rehearse with --sandbox", which export refuses."""
    assert run_cli(["export", EVENT, "--base-url", "http://127.0.0.1:9/v3"], env={}) == 2
    err = capsys.readouterr().err
    assert "no access token" in err
    assert "--sandbox" not in err
    assert named(err) <= accepted("export")


def test_no_access_token_for_run_still_offers_the_rehearsal(
    run_cli: RunCli, write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv([[EVENT, TRACK, reg_id(0), "CANCELED"]])
    args = ["run", str(path), "--status", "CANCELED", "--base-url", "http://127.0.0.1:9/v3", "--yes"]
    assert run_cli(args, env={}) == 2
    assert "or rehearse with --sandbox" in capsys.readouterr().err
