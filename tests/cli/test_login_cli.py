"""`batcher login`, `whoami`, `logout`, `profiles` and `--profile` end to end, in-process, over real HTTP."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.http.profiles import LOGIN_NAME, login_lock, read_login, save_login
from batcher.sandbox import app as sandbox
from tests.conftest import (
    RunCli,
    RunningSandbox,
    StartSandbox,
    WriteCsv,
    closed_port,
    known,
    read_results,
    rows_for,
    token_url,
)

Capsys = pytest.CaptureFixture[str]


def login(box: RunningSandbox, state: Path, *extra: str, client_id: str = sandbox.SANDBOX_CLIENT_ID) -> int:
    words = ["login", "--client-id", client_id, "--token-url", token_url(box), "--no-browser", *extra]
    return cli.main(words, environ={"BATCHER_STATE_DIR": str(state)})


def auto_approving(**changes: object) -> sandbox.Scenario:
    return sandbox.Scenario(rate_limit_per_s=None, auto_approve_after=1, **changes)  # type: ignore[arg-type]


def closed_port_url() -> str:
    return f"http://127.0.0.1:{closed_port()}/oauth2/default/v1/token"


def test_login_shows_the_page_and_code_then_says_where_the_tokens_are(
    start_sandbox: StartSandbox, tmp_path: Path, capsys: Capsys
) -> None:
    box = start_sandbox(auto_approving())
    assert login(box, tmp_path) == 0
    out, err = capsys.readouterr()
    code = next(iter(box.state.devices.values())).user_code
    page = box.url.removesuffix("/v3") + "/activate"
    assert err.splitlines()[0] == f"Open {page} and enter {code} (the code expires in 10 minutes)"
    assert f"The tokens are saved in {tmp_path / LOGIN_NAME} (mode 0600)" in out
    for secret in (box.state.access_token, box.state.refresh_token):
        assert secret not in out + err
    assert (tmp_path / LOGIN_NAME).stat().st_mode & 0o777 == 0o600


def test_after_login_a_run_needs_no_credentials_in_its_environment(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, write_csv: WriteCsv, capsys: Capsys
) -> None:
    rows = rows_for(3)
    box = start_sandbox(auto_approving(), known(rows))
    assert login(box, tmp_path) == 0
    path = write_csv(rows)
    env = {"BATCHER_STATE_DIR": str(tmp_path)}  # no CTCT_* at all
    words = ["run", str(path), "--status-column", "registration_status", "--base-url", box.url, "--yes"]
    assert run_cli([*words, "--no-progress", "--summary-json", str(tmp_path / "s.json")], env) == 0
    assert [row["outcome"] for row in read_results(path.with_name("input.results.csv"))] == ["succeeded"] * 3
    assert {put.headers["Authorization"] for put in box.state.puts} == {f"Bearer {box.state.access_token}"}
    out, err = capsys.readouterr()
    written = (tmp_path / "s.json").read_text() + path.with_name("input.results.csv").read_text()
    for secret in (box.state.access_token, box.state.refresh_token):
        assert secret not in out + err + written


def test_two_profiles_use_their_own_tokens_and_their_own_quota_ledgers(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, write_csv: WriteCsv
) -> None:
    rows = rows_for(2)
    first = start_sandbox(auto_approving(token="account-one-token", client_id="client-one"), known(rows))
    second = start_sandbox(auto_approving(token="account-two-token", client_id="client-two"), known(rows))
    assert login(first, tmp_path, "--profile", "one", client_id="client-one") == 0
    assert login(second, tmp_path, "--profile", "two", client_id="client-two") == 0
    path = write_csv(rows)
    env = {"BATCHER_STATE_DIR": str(tmp_path)}
    for box, profile in ((first, "one"), (second, "two")):
        words = ["run", str(path), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
        results = ["--results", str(tmp_path / f"{profile}.csv")]
        assert run_cli([*words, *results, "--no-snapshot"], {**env, "BATCHER_PROFILE": profile}) == 0
    assert {put.headers["Authorization"] for put in first.state.puts} == {"Bearer account-one-token-login-1"}
    assert {put.headers["Authorization"] for put in second.state.puts} == {"Bearer account-two-token-login-1"}
    assert cli.main([*words, "--results", str(tmp_path / "again.csv"), "--no-snapshot", "--profile", "two"], env) == 0
    ledgers = {
        name: json.loads((tmp_path / "profiles" / name / "quota.json").read_text())["requests"]
        for name in ("one", "two")
    }
    assert ledgers == {"one": 1, "two": 2}  # one PUT per run; each account counts only its own
    assert not (tmp_path / "quota.json").exists()


@pytest.mark.parametrize(
    ("scenario", "client_id", "words"),
    [
        (sandbox.Scenario(rate_limit_per_s=None), "not-our-app", "does not know the client ID 'not-our-app'"),
        (sandbox.Scenario(rate_limit_per_s=None, device_flow=False), "sandbox-client", "may not use the device flow"),
        (auto_approving(device_answers=["garbage"]), "sandbox-client", "not an OAuth answer"),
        (auto_approving(device_answers=["500"]), "sandbox-client", "answered HTTP 500"),
        (auto_approving(device_answers=["access_denied"]), "sandbox-client", "refused at the verification page"),
        (auto_approving(device_answers=["expired_token"]), "sandbox-client", "the code expired"),
    ],
)
def test_each_failure_is_one_line_exit_3_and_nothing_saved(
    start_sandbox: StartSandbox, tmp_path: Path, capsys: Capsys, scenario: sandbox.Scenario, client_id: str, words: str
) -> None:
    box = start_sandbox(scenario)
    assert login(box, tmp_path, client_id=client_id) == 3
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("batcher: error: ") and words in last
    assert "Traceback" not in err
    assert not (tmp_path / LOGIN_NAME).exists()


def test_a_token_endpoint_that_is_down_is_one_line_exit_3(run_cli: RunCli, tmp_path: Path, capsys: Capsys) -> None:
    words = ["login", "--client-id", "abc", "--token-url", closed_port_url(), "--no-browser"]
    assert run_cli(words, {"BATCHER_STATE_DIR": str(tmp_path)}) == 3
    err = capsys.readouterr().err
    assert err.startswith("batcher: error: cannot reach http://127.0.0.1:") and err.count("\n") == 1
    assert not (tmp_path / LOGIN_NAME).exists()


def test_no_client_id_says_where_to_get_one_and_how_to_pass_it(run_cli: RunCli, tmp_path: Path, capsys: Capsys) -> None:
    assert run_cli(["login", "--no-browser"], {"BATCHER_STATE_DIR": str(tmp_path)}) == 2
    err = capsys.readouterr().err
    assert err.startswith("batcher: error: no client ID: pass --client-id KEY (or set CTCT_CLIENT_ID")
    assert "developer portal" in err and err.count("\n") == 1


def test_client_id_comes_from_the_environment_or_the_config_file(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    box = start_sandbox(auto_approving())
    config = tmp_path / "batcher.toml"
    config.write_text(f'client-id = "{sandbox.SANDBOX_CLIENT_ID}"\nbatch-size = 50\n', encoding="utf-8")
    env = {"BATCHER_STATE_DIR": str(tmp_path), "CTCT_TOKEN_URL": token_url(box)}
    assert run_cli(["login", "--no-browser", "--config", str(config)], env) == 0
    assert run_cli(["login", "--no-browser"], {**env, "CTCT_CLIENT_ID": sandbox.SANDBOX_CLIENT_ID}) == 0
    assert [device.client_id for device in box.state.devices.values()] == [sandbox.SANDBOX_CLIENT_ID] * 2


def test_an_unwritable_state_folder_exits_2_before_any_request(
    start_sandbox: StartSandbox, tmp_path: Path, capsys: Capsys
) -> None:
    box = start_sandbox(auto_approving())
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    assert login(box, blocked / "state") == 2
    assert "cannot make the state folder" in capsys.readouterr().err
    assert box.state.devices == {}
    if os.geteuid() != 0:  # root writes anywhere
        readonly = tmp_path / "ro"
        readonly.mkdir(mode=0o500)
        assert login(box, readonly) == 2
        assert box.state.devices == {}


def test_a_second_login_on_one_profile_is_refused(start_sandbox: StartSandbox, tmp_path: Path, capsys: Capsys) -> None:
    box = start_sandbox(auto_approving())
    with login_lock(tmp_path, "default"):
        assert login(box, tmp_path) == 2
    assert "another batcher login for the profile 'default' is running" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["http://authz.example.com/oauth2/default/v1/token", "ftp://127.0.0.1/token"])
def test_the_token_url_is_https_or_loopback_http(run_cli: RunCli, tmp_path: Path, capsys: Capsys, url: str) -> None:
    words = ["login", "--client-id", "abc", "--token-url", url, "--no-browser"]
    assert run_cli(words, {"BATCHER_STATE_DIR": str(tmp_path)}) == 2
    assert "--token-url" in capsys.readouterr().err


def test_a_bad_profile_name_is_refused_on_every_command(run_cli: RunCli, tmp_path: Path, capsys: Capsys) -> None:
    assert run_cli(["whoami", "--profile", "../x"], {}) == 2
    assert run_cli(["plan", "x.csv", "--profile", "a b"], {}) == 2
    assert run_cli(["whoami"], {"BATCHER_PROFILE": "a/b"}) == 2
    assert "is not a profile name" in capsys.readouterr().err


def test_whoami_profiles_and_logout_show_the_login_but_never_a_token(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: Capsys
) -> None:
    box = start_sandbox(auto_approving())
    env = {"BATCHER_STATE_DIR": str(tmp_path)}
    assert run_cli(["whoami"], env) == 1
    assert "not logged in; run 'batcher login'" in capsys.readouterr().out
    assert login(box, tmp_path, "--profile", "acme") == 0
    secrets = (box.state.access_token, box.state.refresh_token)
    capsys.readouterr()
    assert run_cli(["login", "--status", "--profile", "acme"], env) == 0
    status = capsys.readouterr().out
    assert "client ID: sandbox-client" in status and "refresh token: held" in status
    assert f"state folder: {tmp_path / 'profiles' / 'acme'}" in status
    assert run_cli(["profiles"], {**env, "BATCHER_PROFILE": "acme"}) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[1].split()[:2] == ["default", "-"] and listed[2].split()[:2] == ["acme*", "sandbox-client"]
    assert run_cli(["logout", "--profile", "acme"], env) == 0
    said = capsys.readouterr().out
    assert "The server revoked the tokens." in said
    assert read_login(tmp_path / "profiles" / "acme") is None
    assert all(secret not in status + "\n".join(listed) + said for secret in secrets)


def test_print_config_shows_where_the_tokens_come_from_flag_environment_config_profile(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: Capsys
) -> None:
    box = start_sandbox(auto_approving())
    assert login(box, tmp_path) == 0
    token_file = tmp_path / "tokens.json"
    token_file.write_text(json.dumps({"access_token": "file-token-123"}), encoding="utf-8")
    config = tmp_path / "c.toml"
    config.write_text(f'token-file = "{token_file}"\n', encoding="utf-8")
    env = {"BATCHER_STATE_DIR": str(tmp_path)}

    def credentials(*words: str, **extra: str) -> str:
        capsys.readouterr()
        assert run_cli(["plan", "x.csv", "--print-config", *words], {**env, **extra}) == 0
        return capsys.readouterr().out.strip().splitlines()[-1]

    assert credentials().endswith("# profile default") and "login of client ID sandbox-client" in credentials()
    assert credentials("--config", str(config)).endswith(f"# config {config}")
    assert credentials("--config", str(config), CTCT_ACCESS_TOKEN="env-token-123").endswith("# env CTCT_ACCESS_TOKEN")
    assert credentials("--token-file", str(token_file), CTCT_ACCESS_TOKEN="env-token-123").endswith("# flag")
    assert "none: run 'batcher login --profile other'" in credentials("--profile", "other")
    everything = credentials()
    assert box.state.access_token not in everything


def test_login_with_sandbox_rehearses_the_whole_flow_and_saves_nothing(
    run_cli: RunCli, tmp_path: Path, capsys: Capsys
) -> None:
    assert run_cli(["login", "--sandbox", "--no-browser"], {"BATCHER_STATE_DIR": str(tmp_path)}) == 0
    out, err = capsys.readouterr()
    assert err.startswith("Open http://127.0.0.1:") and "/activate and enter " in err
    assert out.startswith("Sandbox login approved for client ID sandbox-client") and "Nothing was saved" in out
    assert not (tmp_path / LOGIN_NAME).exists()


def test_a_run_with_no_login_and_no_token_says_to_log_in(
    run_cli: RunCli, write_csv: WriteCsv, tmp_path: Path, capsys: Capsys
) -> None:
    path = write_csv(rows_for(1))
    env = {"BATCHER_STATE_DIR": str(tmp_path)}
    words = ["run", str(path), "--status", "CANCELED", "--base-url", "http://127.0.0.1:9/v3", "--profile", "acme"]
    assert run_cli(words, env) == 2
    assert "no access token: run 'batcher login --profile acme' once" in capsys.readouterr().err


def test_a_login_whose_refresh_is_refused_says_to_log_in_again(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, write_csv: WriteCsv, capsys: Capsys
) -> None:
    rows = rows_for(2)
    box = start_sandbox(auto_approving(token_expires_after=0), known(rows))
    assert login(box, tmp_path, "--profile", "acme") == 0
    box.state.refresh_token = "revoked-elsewhere"  # e.g. unused for 180 days, or spent by a copy of login.json
    words = ["run", str(write_csv(rows)), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
    assert run_cli([*words, "--profile", "acme"], {"BATCHER_STATE_DIR": str(tmp_path)}) == 3
    err = capsys.readouterr().err
    assert "refused to refresh the access token (invalid_grant). Log in again (batcher login --profile acme)" in err


def test_an_expired_login_is_refreshed_before_the_first_request(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, write_csv: WriteCsv
) -> None:
    rows = rows_for(2)
    box = start_sandbox(auto_approving(token_lifetime_s=60), known(rows))
    assert login(box, tmp_path) == 0  # its access token expires within the early-refresh margin
    first_token = box.state.access_token
    words = ["run", str(write_csv(rows)), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
    assert run_cli(words, {"BATCHER_STATE_DIR": str(tmp_path)}) == 0
    assert box.state.refreshes == 1
    assert first_token not in {request.headers["Authorization"] for request in box.state.requests}
    saved = read_login(tmp_path)
    assert saved is not None and saved.access_token == box.state.access_token


def test_a_failed_early_refresh_of_a_token_that_still_works_is_said_and_the_run_goes_on(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, write_csv: WriteCsv, capsys: Capsys
) -> None:
    rows = rows_for(2)
    box = start_sandbox(auto_approving(token_lifetime_s=60), known(rows))
    assert login(box, tmp_path) == 0
    words = ["run", str(write_csv(rows)), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
    down = ["--token-url", closed_port_url()]
    assert run_cli([*words, *down], {"BATCHER_STATE_DIR": str(tmp_path)}) == 0
    assert "could not renew the access token before it expires" in capsys.readouterr().err
    assert box.state.refreshes == 0 and len(box.state.puts) == 1


def test_a_failed_refresh_of_an_expired_login_stops_the_run(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, write_csv: WriteCsv, capsys: Capsys
) -> None:
    rows = rows_for(2)
    box = start_sandbox(auto_approving(token_lifetime_s=60), known(rows))
    assert login(box, tmp_path) == 0
    saved = read_login(tmp_path)
    assert saved is not None
    save_login(tmp_path, replace(saved, expires_at=saved.expires_at - timedelta(hours=1)))
    words = ["run", str(write_csv(rows)), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
    down = ["--token-url", closed_port_url()]
    assert run_cli([*words, *down], {"BATCHER_STATE_DIR": str(tmp_path)}) == 3
    assert "did not answer" in capsys.readouterr().err
    assert box.state.puts == [] and box.state.reads == []


def test_export_reads_with_the_profile_s_login_too(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, capsys: Capsys
) -> None:
    rows = rows_for(3)
    box = start_sandbox(auto_approving(), known(rows))
    assert login(box, tmp_path, "--profile", "acme") == 0
    out = tmp_path / "event.csv"
    words = ["export", rows[0][0], "--base-url", box.url, "--out", str(out), "--no-progress"]
    assert run_cli(words, {"BATCHER_STATE_DIR": str(tmp_path), "BATCHER_PROFILE": "acme"}) == 0
    assert len(read_results(out)) == 3
    assert {read.headers["Authorization"] for read in box.state.reads} == {f"Bearer {box.state.access_token}"}
    assert (tmp_path / "profiles" / "acme" / "quota.json").exists()


def test_the_device_endpoint_is_the_token_endpoint_s_sibling_unless_given(tmp_path: Path) -> None:
    from batcher.errors import UsageError  # noqa: PLC0415
    from batcher.flows.login import login_options  # noqa: PLC0415

    common = {"profile": "default", "state_root": tmp_path, "client_id": "abc", "open_browser": False}
    token = "https://authz.example.com/oauth2/default/v1/token"
    chosen = login_options(token_url=token, device_url=None, **common)  # type: ignore[arg-type]
    assert chosen.device_url == "https://authz.example.com/oauth2/default/v1/device/authorize"
    given = login_options(token_url=token, device_url="https://device.example.com/da", **common)  # type: ignore[arg-type]
    assert given.device_url == "https://device.example.com/da"
    with pytest.raises(UsageError, match=r"--device-url http://device\.example\.com/da is plain http"):
        login_options(token_url=token, device_url="http://device.example.com/da", **common)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="--client-id holds a character"):
        login_options(token_url=token, device_url=None, **{**common, "client_id": "a\x1bb"})  # type: ignore[arg-type]


def test_no_token_of_the_login_reaches_the_log_file_at_any_verbosity(
    run_cli: RunCli, start_sandbox: StartSandbox, tmp_path: Path, write_csv: WriteCsv, capsys: Capsys
) -> None:
    rows = rows_for(2)
    box = start_sandbox(auto_approving(token_lifetime_s=60, token_expires_after=1), known(rows))
    assert login(box, tmp_path) == 0
    log = tmp_path / "run.log"
    words = ["run", str(write_csv(rows)), "--status", "CANCELED", "--base-url", box.url, "--yes", "--no-progress"]
    assert run_cli([*words, "-vv", "--log-file", str(log)], {"BATCHER_STATE_DIR": str(tmp_path)}) == 0
    assert box.state.refreshes >= 1  # early, and again after the token stopped working
    out, err = capsys.readouterr()
    said = out + err + log.read_text(encoding="utf-8")
    for secret in (
        box.state.access_token,
        box.state.refresh_token,
        "sandbox-token-login-1",
        "sandbox-refresh-token-login-1",
    ):
        assert secret not in said
