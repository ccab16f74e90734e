"""Retries, 429 pacing, token refresh and quota, over real HTTP against the sandbox."""

from __future__ import annotations

import base64
import json
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from batcher.cli import main as cli
from batcher.errors import AuthError, QuotaError, RunStopped
from batcher.http.auth import Credentials, fingerprint, load_credentials
from batcher.http.quota import QuotaLedger
from batcher.models import BatchResult
from batcher.plan.chunker import plan_batches
from batcher.results.journal import Journal
from batcher.sandbox import app as sandbox
from batcher.settings import Settings
from batcher.support import redaction
from tests.conftest import EVENT, TARGET_COLUMN, TRACK, RunningSandbox, StartSandbox, history_files, reg_id
from tests.remote.test_sender import groups_of, send, serve


def refreshing(url: str, *, refresh_token: str = sandbox.SANDBOX_REFRESH_TOKEN, **kwargs: Any) -> Credentials:
    return Credentials(
        sandbox.SANDBOX_TOKEN,
        refresh_token=refresh_token,
        client_id=sandbox.SANDBOX_CLIENT_ID,
        token_url=url.removesuffix("/v3") + sandbox.TOKEN_PATH,
        **kwargs,
    )


@pytest.mark.real_waits
async def test_throttled_429_waits_for_retry_after_before_sending_anything(
    aiohttp_server: Any, settings: Settings
) -> None:
    groups = groups_of(3)
    scenario = sandbox.Scenario(rate_limit_per_s=None, statuses=[429], retry_after="0.3")
    url, state = await serve(aiohttp_server, scenario, groups)
    results = await send(plan_batches(groups, batch_size=1), replace(settings, base_url=url, concurrency=1))
    assert [r.http_status for r in results] == [200, 200, 200]
    first, *rest = state.puts
    assert first.status == 429
    assert all(later.at - first.at >= 0.3 for later in rest)


async def test_throttled_429_does_not_use_up_retries(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(1)
    url, _ = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, statuses=[429, 429, 429]), groups)
    (result,) = await send(plan_batches(groups, batch_size=1), replace(settings, base_url=url, max_retries=0))
    assert (result.http_status, result.attempts) == (200, 4)


async def test_endless_429_stops_the_run_past_the_wait_bound(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(2)
    scenario = sandbox.Scenario(rate_limit_per_s=None, status=429, retry_after="0.05")
    url, _ = await serve(aiohttp_server, scenario, groups)
    with pytest.raises(RunStopped, match="kept answering 429"):
        await send(plan_batches(groups, batch_size=1), replace(settings, base_url=url, max_throttle_wait_s=0.2))


async def test_quota_exceeded_stops_at_once_without_resending(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(5)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, daily_quota=2), groups)
    seen: list[BatchResult] = []
    with pytest.raises(QuotaError, match="resets at 00:00 UTC"):
        await send(
            plan_batches(groups, batch_size=1), replace(settings, base_url=url, concurrency=1), on_result=seen.append
        )
    assert [r.http_status for r in seen] == [200, 200]
    assert [p.status for p in state.puts] == [200, 200, 429]


async def test_concurrent_401s_cause_one_refresh_and_every_batch_goes_through(
    aiohttp_server: Any, settings: Settings
) -> None:
    groups = groups_of(20)
    scenario = sandbox.Scenario(rate_limit_per_s=None, token_expires_after=3, latency_s=(0.02, 0.02))
    url, state = await serve(aiohttp_server, scenario, groups)
    results = await send(
        plan_batches(groups, batch_size=2), replace(settings, base_url=url, concurrency=4), credentials=refreshing(url)
    )
    assert [r.http_status for r in results] == [200] * 10
    # three PUTs per token: 10 batches need the first token and three refreshed ones, however many 401s came
    assert state.refreshes == 3
    assert sum(1 for p in state.puts if p.status == 401) >= state.refreshes


async def test_a_refreshed_token_that_is_also_rejected_stops_the_run(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(2)
    url, _ = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, token_expires_after=0), groups)
    with pytest.raises(AuthError, match="even after a refresh"):
        await send(plan_batches(groups, batch_size=1), replace(settings, base_url=url), credentials=refreshing(url))


async def test_invalid_grant_stops_the_run_and_says_what_to_set(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(1)
    url, _ = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, token_expires_after=0), groups)
    with pytest.raises(AuthError, match=r"invalid_grant.*CTCT_REFRESH_TOKEN") as caught:
        await send(
            plan_batches(groups, batch_size=1),
            replace(settings, base_url=url),
            credentials=refreshing(url, refresh_token="stale-refresh-token"),
        )
    assert "stale-refresh-token" not in str(caught.value)


async def test_rotated_tokens_are_written_back_to_the_token_file_with_mode_0600(
    aiohttp_server: Any, settings: Settings, tmp_path: Path
) -> None:
    groups = groups_of(2)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, token_expires_after=1), groups)
    token_file = tmp_path / "tokens.json"
    token_file.write_text(
        json.dumps({"access_token": sandbox.SANDBOX_TOKEN, "refresh_token": sandbox.SANDBOX_REFRESH_TOKEN})
    )
    env = {"CTCT_CLIENT_ID": sandbox.SANDBOX_CLIENT_ID, "CTCT_TOKEN_URL": url.removesuffix("/v3") + sandbox.TOKEN_PATH}
    credentials = load_credentials(env, token_file=token_file, state_dir=tmp_path / "state")
    await send(
        plan_batches(groups, batch_size=1), replace(settings, base_url=url, concurrency=1), credentials=credentials
    )
    saved = json.loads(token_file.read_text())
    assert saved == {"access_token": state.access_token, "refresh_token": state.refresh_token}
    assert saved["refresh_token"] != sandbox.SANDBOX_REFRESH_TOKEN
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


async def test_env_credentials_save_a_rotated_pair_for_later_runs(
    aiohttp_server: Any, settings: Settings, tmp_path: Path
) -> None:
    groups = groups_of(2)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, token_expires_after=1), groups)
    env = {
        "CTCT_ACCESS_TOKEN": sandbox.SANDBOX_TOKEN,
        "CTCT_REFRESH_TOKEN": sandbox.SANDBOX_REFRESH_TOKEN,
        "CTCT_CLIENT_ID": sandbox.SANDBOX_CLIENT_ID,
        "CTCT_TOKEN_URL": url.removesuffix("/v3") + sandbox.TOKEN_PATH,
    }
    state_dir = tmp_path / "state"
    credentials = load_credentials(env, token_file=None, state_dir=state_dir)
    await send(
        plan_batches(groups, batch_size=1), replace(settings, base_url=url, concurrency=1), credentials=credentials
    )
    saved_file = state_dir / "tokens.json"
    saved = json.loads(saved_file.read_text())
    assert saved["refresh_token"] == state.refresh_token
    assert saved["replaces"] == fingerprint(sandbox.SANDBOX_REFRESH_TOKEN)
    assert stat.S_IMODE(saved_file.stat().st_mode) == 0o600
    assert "saved in" in credentials.saved_notice
    later = load_credentials(env, token_file=None, state_dir=state_dir)
    assert later.authorization() == {"Authorization": f"Bearer {state.access_token}"}
    newer_env = {**env, "CTCT_REFRESH_TOKEN": "a-new-one-the-user-set", "CTCT_ACCESS_TOKEN": "fresh"}
    assert (
        load_credentials(newer_env, token_file=None, state_dir=state_dir).authorization()["Authorization"]
        == "Bearer fresh"
    )


def test_credentials_register_every_secret_they_hold() -> None:
    Credentials("secret-access", refresh_token="secret-refresh", client_id="c", client_secret="secret-cs")
    basic = base64.b64encode(b"c:secret-cs").decode()
    assert redaction.redact(f"a secret-access b secret-refresh c secret-cs {basic}") == "a *** b *** c *** ***"


def cli_run(box: RunningSandbox, folder: Path, rows: int, name: str, *extra: str) -> int:
    """A CLI run with --token-file against box, at -vv with a log file and a summary."""
    path = folder / f"{name}.csv"
    path.write_text(HEADER_LINE + "".join(f"{EVENT},{TRACK},{reg_id(n)},CANCELED\n" for n in range(rows)))
    # the token expiries count requests: PUTs only here (--no-snapshot)
    options = f"--rate 1000 --batch-size 1 --token-file {folder / 'tokens.json'} -vv --log-file {folder / name}.log"
    options += " --no-snapshot"
    argv = [
        "run",
        *TARGET_COLUMN,
        str(path),
        "--base-url",
        box.url,
        "--yes",
        *options.split(),
    ]
    argv += ["--summary-json", str(folder / f"{name}.summary.json"), *extra]
    return cli.main(argv, environ={"CTCT_TOKEN_URL": box.url.removesuffix("/v3") + sandbox.TOKEN_PATH})


HEADER_LINE = "event_id,track_id,registration_id,registration_status\n"
ACCESS, REFRESH = "acc-first-Zq81xw", "ref-first-Lm27pk"


def test_a_token_file_run_that_refreshes_shows_no_token_anywhere(
    start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = sandbox.Scenario(rate_limit_per_s=None, token=ACCESS, refresh_token=REFRESH, token_expires_after=2)
    box = start_sandbox(scenario, [(EVENT, TRACK, reg_id(n), "REGISTERED") for n in range(6)])
    tokens = tmp_path / "tokens.json"
    tokens.write_text(
        json.dumps({"access_token": ACCESS, "refresh_token": REFRESH, "client_id": sandbox.SANDBOX_CLIENT_ID})
    )
    assert cli_run(box, tmp_path, 6, "night") == 0
    assert box.state.refreshes == 2
    out, err = capsys.readouterr()
    secrets = [ACCESS, REFRESH, box.state.access_token, box.state.refresh_token, f"{ACCESS}-1", f"{REFRESH}-1"]
    texts = {"stdout": out, "stderr": err}
    texts |= {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir() if p.is_file() and p != tokens}
    assert {"night.log", "night.summary.json", "night.results.csv"} <= set(texts)
    kept = history_files()
    assert {name.split("/")[1] for name in kept} == {"run.json", "journal", "results.csv"}
    texts |= kept
    assert "the access token was refreshed" in texts["night.log"]
    assert [(name, secret) for name, text in texts.items() for secret in secrets if secret in text] == []


def test_two_nights_in_a_row_with_a_token_file_both_succeed(
    start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = start_sandbox(
        sandbox.Scenario(rate_limit_per_s=None, token_expires_after=2),
        [(EVENT, TRACK, reg_id(n), "REGISTERED") for n in range(5)],
    )
    tokens = tmp_path / "tokens.json"
    kept = {"client_id": sandbox.SANDBOX_CLIENT_ID, "note": "kept"}
    tokens.write_text(
        json.dumps({"access_token": sandbox.SANDBOX_TOKEN, "refresh_token": sandbox.SANDBOX_REFRESH_TOKEN, **kept})
    )
    assert cli_run(box, tmp_path, 5, "first") == 0, capsys.readouterr().err
    saved = json.loads(tokens.read_text())
    assert saved == {"access_token": box.state.access_token, "refresh_token": box.state.refresh_token, **kept}
    assert cli_run(box, tmp_path, 5, "second") == 0, capsys.readouterr().err
    assert box.state.refreshes >= 4
    assert json.loads(tokens.read_text())["client_id"] == sandbox.SANDBOX_CLIENT_ID


def test_the_journal_and_the_quota_file_are_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "r.csv.journal", append=False)
    journal.close()
    ledger = QuotaLedger(tmp_path / "state", 100)
    assert ledger.take()
    assert stat.S_IMODE((tmp_path / "r.csv.journal").stat().st_mode) == 0o600
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600


async def test_local_daily_quota_stops_before_going_over(
    aiohttp_server: Any, settings: Settings, tmp_path: Path
) -> None:
    groups = groups_of(5)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None), groups)
    ledger = QuotaLedger(tmp_path / "state", 3)
    with pytest.raises(QuotaError, match="--daily-quota"):
        await send(plan_batches(groups, batch_size=1), replace(settings, base_url=url, concurrency=1), quota=ledger)
    ledger.close()
    assert len(state.puts) == 3
    assert QuotaLedger(tmp_path / "state", 3).used_today() == 3


def test_quota_ledger_gives_back_unused_reservations_and_resets_each_utc_day(tmp_path: Path) -> None:
    now = [datetime(2026, 11, 27, 23, 59, tzinfo=UTC)]
    ledger = QuotaLedger(tmp_path, 100, clock=lambda: now[0])
    assert all(ledger.take() for _ in range(3))
    ledger.close()
    assert ledger.used_today() == 3
    now[0] = datetime(2026, 11, 28, 0, 1, tzinfo=UTC)
    assert ledger.used_today() == 0
    assert ledger.remaining_today() == 100


async def test_soak_with_5xx_resets_and_stalls_applies_every_row(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(3000)
    scenario = sandbox.Scenario(
        rate_limit_per_s=None, error_rate=0.10, reset_rate=0.03, stall_rate=0.02, stall_s=0.5, seed=7, html_errors=True
    )
    url, state = await serve(aiohttp_server, scenario, groups)
    batches = plan_batches(groups, batch_size=20)
    quick = replace(settings, base_url=url, concurrency=8, timeout_s=0.2, max_retries=12)
    results = await send(batches, quick)
    assert [(r.batch, r.http_status, r.error) for r in results] == [(b.number, 200, "") for b in batches]
    assert {state.status_of(EVENT, f"{TRACK}0", rid) for rid in groups[0].registration_ids} == {"CANCELED"}
    assert sum(1 for p in state.puts if p.status == 0) > 0  # resets did happen
    assert sum(1 for p in state.puts if p.status in (500, 503)) > 0
