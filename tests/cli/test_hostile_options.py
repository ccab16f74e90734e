"""Issue 18: option values and output paths that must be refused before anything is read or sent.

Non-finite numbers (8), credentials in URLs and a plain-http token URL (11), output paths that collide (12).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.sandbox import app as sandbox
from tests.conftest import TOKEN_ENV, StartSandbox, WriteCsv, known, rows_for

STATUS = ["--status-column", "registration_status"]

# --- 8. non-finite numbers ------------------------------------------------------------------------------------

FLOAT_OPTIONS = ["--rate", "--timeout", "--max-throttle-wait", "--progress-every"]


@pytest.mark.parametrize("option", FLOAT_OPTIONS)
@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e999"])
def test_a_non_finite_number_is_refused_for_every_option(
    write_csv: WriteCsv, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    code = cli.main(["plan", str(write_csv(rows_for(2))), *STATUS, f"{option}={value}"], environ=TOKEN_ENV)
    err = capsys.readouterr().err
    assert code == 2, err
    assert option in err and "finite" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("where", ["environment", "config"])
def test_a_non_finite_number_from_the_environment_or_a_config_file_is_refused(
    write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    environ = dict(TOKEN_ENV)
    args = ["plan", str(write_csv(rows_for(2))), *STATUS]
    if where == "environment":
        environ["BATCHER_MAX_THROTTLE_WAIT"] = "nan"
    else:
        config = tmp_path / "batcher.toml"
        config.write_text("max-throttle-wait = inf\n", encoding="utf-8")
        args += ["--config", str(config)]
    assert cli.main(args, environ=environ) == 2
    assert "finite" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--stall-s", "--error-rate"])
def test_the_sandbox_command_refuses_non_finite_numbers(capsys: pytest.CaptureFixture[str], option: str) -> None:
    assert cli.main(["sandbox", option, "nan"]) == 2
    err = capsys.readouterr().err
    assert option in err and ("finite" in err or "fraction" in err)


# --- 11. passwords in URLs, and the token URL's https rule ---------------------------------------------------

SECRET = "hunter2-pw"


@pytest.mark.parametrize("command", ["plan", "run", "export", "verify"])
def test_a_base_url_with_credentials_is_refused_and_its_password_never_printed(
    write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    url = f"http://user:{SECRET}@127.0.0.1:9/v3"
    target = {"export": "07216444-4e3b-41ea-a3b8-5a418fce41f4", "verify": str(tmp_path / "r.csv")}
    args = [command, target.get(command, str(write_csv(rows_for(2)))), "--base-url", url]
    summary = tmp_path / "summary.json"
    if command in ("plan", "run"):
        args += ["--yes", "--summary-json", str(summary), *STATUS]
    code = cli.main(args, environ=TOKEN_ENV)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "user name or password" in err
    texts = out + err + (summary.read_text() if summary.exists() else "")
    assert SECRET not in texts


def test_print_config_never_shows_a_password_in_a_url(write_csv: WriteCsv, capsys: pytest.CaptureFixture[str]) -> None:
    environ = {**TOKEN_ENV, "CTCT_TOKEN_URL": f"https://client:{SECRET}@auth.example.com/token"}
    args = ["run", str(write_csv(rows_for(2))), "--print-config", "--base-url", f"https://u:{SECRET}@x.org/v3"]
    cli.main(args, environ=environ)
    out, err = capsys.readouterr()
    assert SECRET not in out + err


@pytest.mark.parametrize(
    ("token_url", "refused"),
    [
        ("http://auth.example.com/oauth2/token", "plain http"),
        (f"https://client:{SECRET}@auth.example.com/token", "user name or password"),
        ("ftp://auth.example.com/token", "https"),
    ],
)
@pytest.mark.parametrize("given", ["flag", "environment"])
def test_a_token_url_must_be_https_without_credentials(
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    token_url: str,
    refused: str,
    given: str,
) -> None:
    rows = rows_for(2)
    box = start_sandbox(registrations=known(rows))
    environ = {"CTCT_REFRESH_TOKEN": sandbox.SANDBOX_REFRESH_TOKEN, "CTCT_CLIENT_ID": sandbox.SANDBOX_CLIENT_ID}
    args = ["run", str(write_csv(rows)), "--base-url", box.url, "--yes", "--results", str(tmp_path / "r.csv"), *STATUS]
    if given == "flag":
        args += ["--token-url", token_url]
    else:
        environ["CTCT_TOKEN_URL"] = token_url
    code = cli.main(args, environ=environ)
    err = capsys.readouterr().err
    assert code == 2, err
    assert refused in err and SECRET not in err
    assert box.state.requests == []


def test_a_plain_http_token_url_to_a_loopback_address_is_allowed(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path
) -> None:
    rows = rows_for(2)
    box = start_sandbox(registrations=known(rows))
    environ = {"CTCT_REFRESH_TOKEN": sandbox.SANDBOX_REFRESH_TOKEN, "CTCT_CLIENT_ID": sandbox.SANDBOX_CLIENT_ID}
    token_url = box.url.removesuffix("/v3") + sandbox.TOKEN_PATH
    args = ["run", str(write_csv(rows)), "--base-url", box.url, "--yes", "--results", str(tmp_path / "r.csv"), *STATUS]
    assert cli.main([*args, "--token-url", token_url, "--no-progress"], environ=environ) == 0


# --- 12. output paths that collide -------------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["--summary-json", "--log-file"])
def test_an_output_path_equal_to_the_results_is_refused_before_anything_is_sent(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str], other: str
) -> None:
    rows = rows_for(2)
    box = start_sandbox(registrations=known(rows))
    results = tmp_path / "r.csv"
    results.write_text("keep me\n", encoding="utf-8")
    args = ["run", str(write_csv(rows)), "--base-url", box.url, "--yes", "--results", str(results), *STATUS]
    code = cli.main([*args, other, str(tmp_path / "." / "r.csv")], environ=TOKEN_ENV)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "same file" in err and other in err
    assert results.read_text(encoding="utf-8") == "keep me\n"
    assert box.state.requests == []


def test_results_that_are_another_runs_lock_are_refused(
    start_sandbox: StartSandbox, write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = rows_for(2)
    box = start_sandbox(registrations=known(rows))
    lock = tmp_path / "earlier.results.csv.lock"
    lock.write_text("", encoding="utf-8")
    args = ["run", str(write_csv(rows)), "--base-url", box.url, "--yes", "--results", str(lock), *STATUS]
    assert cli.main(args, environ=TOKEN_ENV) == 2
    assert "lock" in capsys.readouterr().err
    assert box.state.requests == []


@pytest.mark.parametrize("option", ["--results", "--summary-json", "--log-file"])
def test_an_output_that_is_another_runs_journal_is_refused(
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
) -> None:
    rows = rows_for(2)
    box = start_sandbox(registrations=known(rows))
    first = ["run", str(write_csv(rows)), "--base-url", box.url, "--yes", "--no-progress", *STATUS]
    assert cli.main([*first, "--results", str(tmp_path / "first.csv")], environ=TOKEN_ENV) == 0
    (journal,) = tmp_path.rglob("runs/*/journal")  # the run history, in the test's own home
    kept = journal.read_bytes()
    requests = len(box.state.requests)
    capsys.readouterr()
    args = [*first, "--results", str(tmp_path / "second.csv"), option, str(journal)]
    code = cli.main(args, environ=TOKEN_ENV)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "run history" in err
    assert journal.read_bytes() == kept
    assert len(box.state.requests) == requests


def test_a_summary_equal_to_the_log_file_is_refused(
    write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = tmp_path / "out.txt"
    args = ["plan", str(write_csv(rows_for(2))), *STATUS, "--summary-json", str(same), "--log-file", str(same)]
    assert cli.main(args, environ=TOKEN_ENV) == 2
    assert "same file" in capsys.readouterr().err


def test_a_symlinked_summary_that_is_the_results_is_refused(
    write_csv: WriteCsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r.csv"
    results.write_text("keep me\n", encoding="utf-8")
    link = tmp_path / "summary.json"
    link.symlink_to(results)
    args = ["run", str(write_csv(rows_for(2))), *STATUS, "--sandbox", "--results", str(results)]
    args += ["--summary-json", str(link)]
    assert cli.main(args, environ=TOKEN_ENV) == 2
    assert results.read_text(encoding="utf-8") == "keep me\n"
    assert json.dumps("same file")[1:-1] in capsys.readouterr().err


def test_verify_out_equal_to_the_results_it_reads_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r.csv"
    results.write_text("keep me\n", encoding="utf-8")
    assert cli.main(["verify", str(results), "--out", str(results)], environ=TOKEN_ENV) == 2
    assert "same file" in capsys.readouterr().err
    assert results.read_text(encoding="utf-8") == "keep me\n"
