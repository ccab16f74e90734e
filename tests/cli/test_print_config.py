"""--print-config says what a run would use (issue 19): query flags left to the API, values a run would refuse
(with their source), and which credential wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunCli


def shown(out: str) -> dict[str, str]:
    return {line.split(" = ")[0]: line.split(" = ", 1)[1] for line in out.splitlines() if " = " in line}


def test_query_flags_left_unset_say_the_api_decides(run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["run", "in.csv", "--print-config", "--no-increase-count"]) == 0
    lines = shown(capsys.readouterr().out)
    assert lines["increase-count"] == "False  # flag"
    assert lines["increase-item-count"] == "(not sent: the API's default)  # default"
    assert lines["return-items-to-inventory"] == "(not sent: the API's default)  # default"


def test_an_out_of_range_value_in_the_config_file_is_refused_naming_the_file_and_key(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "batcher.toml"
    config.write_text("batch_size = 900\n")
    assert run_cli(["run", "in.csv", "--print-config", "--config", str(config)]) == 2
    said = capsys.readouterr()
    assert "batch-size = 900" not in said.out
    assert f"--batch-size must be between 1 and 500 (got 900) (set by {config}: batch_size)" in said.err


@pytest.mark.parametrize(
    ("command", "variable", "text", "flag"),
    [
        ("run", "BATCHER_BATCH_SIZE", "0", "--batch-size"),
        ("run", "BATCHER_RATE", "0", "--rate"),
        ("verify", "BATCHER_TIMEOUT", "-1", "--timeout"),
    ],
)
def test_a_refused_value_from_the_environment_names_the_variable(
    command: str, variable: str, text: str, flag: str, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ["--status", "CANCELED"] if command == "run" else []
    assert run_cli([command, "in.csv", *extra], env={variable: text}) == 2
    err = capsys.readouterr().err
    assert flag in err
    assert f"(set by environment variable {variable})" in err


def test_a_refused_flag_is_not_blamed_on_a_source(run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["run", "in.csv", "--status", "CANCELED", "--batch-size", "900"]) == 2
    assert "set by" not in capsys.readouterr().err


def test_print_config_says_which_credential_wins(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "tokens.json"
    token_file.write_text('{"access_token": "from-the-file"}')
    env = {"CTCT_ACCESS_TOKEN": "from-env", "CTCT_REFRESH_TOKEN": "refresh", "CTCT_CLIENT_ID": "key"}
    assert run_cli(["run", "in.csv", "--print-config", "--token-file", str(token_file)], env=env) == 0
    assert shown(capsys.readouterr().out)["credentials"] == f"'the token file {token_file}'  # flag"
    assert run_cli(["run", "in.csv", "--print-config"], env=env) == 0
    assert (
        shown(capsys.readouterr().out)["credentials"]
        == "'the access token in CTCT_ACCESS_TOKEN'  # env CTCT_ACCESS_TOKEN"
    )
