"""A hostile server of the tests' own: bodies in pieces, redirects, unusable Retry-After, echoed secrets."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from batcher.errors import AuthError, RunStopped
from batcher.http import transport
from batcher.http.auth import Credentials
from batcher.http.client import ApiClient
from batcher.models import WireStats
from batcher.plan.chunker import plan_batches
from batcher.sandbox import app as sandbox
from batcher.settings import Settings
from tests.conftest import (
    EVENT,
    TARGET_COLUMN,
    RunCli,
    StartSandbox,
    WriteCsv,
    known,
    outcomes,
    read_results,
    reg_id,
    rows_for,
)
from tests.remote.test_sender import TOKEN, groups_of, send, serve

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUT_PATH = "/v3/events/{event_id}/tracks/{track_id}/registrations"
TOKEN_PATH = "/oauth2/token"


async def in_pieces(request: web.Request, status: int, body: bytes, *, pieces: int = 3) -> web.StreamResponse:
    """Write body in several TCP writes with pauses, as TLS records, chunking and proxies do."""
    response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    await response.prepare(request)
    step = max(1, len(body) // pieces)
    for start in range(0, len(body), step):
        await response.write(body[start : start + step])
        await asyncio.sleep(0.05)
    await response.write_eof()
    return response


def app_with(routes: dict[tuple[str, str], Handler]) -> web.Application:
    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    return app


async def start(aiohttp_server: Any, app: web.Application) -> str:
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


@contextmanager
def in_thread(app: web.Application) -> Iterator[str]:
    """Serve app from its own loop in a thread, for in-process CLI runs; yields http://127.0.0.1:port."""
    loop = asyncio.new_event_loop()
    ready, box = threading.Event(), {}
    finished = asyncio.Event()

    async def run() -> None:
        async with sandbox.running(app) as url:
            box["url"] = url.removesuffix("/v3")
            ready.set()
            await finished.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield box["url"]
    finally:
        loop.call_soon_threadsafe(finished.set)
        thread.join(10)
        loop.close()


def run_args(input_path: Path, url: str, results: Path, options: str) -> list[str]:
    """batcher run input --base-url url --yes --results results, plus options (split on spaces)."""
    argv = [
        "run",
        *TARGET_COLUMN,
        str(input_path),
        "--base-url",
        url,
        "--yes",
        "--results",
        str(results),
        *options.split(),
    ]
    return argv


# --- 13.1: bodies that arrive in pieces --------------------------------------------------------------


async def test_a_207_body_in_pieces_is_read_whole(aiohttp_server: Any, settings: Settings) -> None:
    async def put(request: web.Request) -> web.StreamResponse:
        return await in_pieces(request, 207, json.dumps({"failed_registration_ids": [reg_id(1)]}).encode())

    root = await start(aiohttp_server, app_with({("PUT", PUT_PATH): put}))
    (result,) = await send(plan_batches(groups_of(3), batch_size=10), replace(settings, base_url=root + "/v3"))
    assert (result.http_status, result.failed_ids, result.attempts, result.error) == (
        207,
        frozenset({reg_id(1)}),
        1,
        "",
    )


async def test_a_token_answer_in_pieces_refreshes_the_token(aiohttp_server: Any, settings: Settings) -> None:
    async def put(request: web.Request) -> web.StreamResponse:
        if request.headers["Authorization"] != "Bearer acc-new-123456":
            return web.json_response([{"error_key": "unauthorized", "error_message": "expired"}], status=401)
        return web.Response(status=200)

    async def token(request: web.Request) -> web.StreamResponse:
        body = {"access_token": "acc-new-123456", "refresh_token": "ref-new-123456", "token_type": "Bearer"}
        return await in_pieces(request, 200, json.dumps(body).encode(), pieces=4)

    root = await start(aiohttp_server, app_with({("PUT", PUT_PATH): put, ("POST", TOKEN_PATH): token}))
    credentials = Credentials("acc-old-123456", refresh_token="ref-old-1", client_id="c", token_url=root + TOKEN_PATH)
    results = await send(
        plan_batches(groups_of(2), batch_size=1), replace(settings, base_url=root + "/v3"), credentials=credentials
    )
    assert [r.http_status for r in results] == [200, 200]
    assert credentials.authorization() == {"Authorization": "Bearer acc-new-123456"}


async def test_a_read_gets_the_whole_body_and_refuses_one_past_the_cap(aiohttp_server: Any, settings: Settings) -> None:
    big = json.dumps({"results": ["x" * 1000] * 300}).encode()  # about 300 kB, written in pieces

    async def get(request: web.Request) -> web.StreamResponse:
        size = int(request.query["size"])
        return await in_pieces(request, 200, big if size == 0 else b"x" * size, pieces=5)

    root = await start(aiohttp_server, app_with({("GET", "/v3/events/{event_id}"): get}))
    async with ApiClient(replace(settings, base_url=root + "/v3"), TOKEN) as api_client:
        whole = await api_client.call("GET", f"{root}/v3/events/e", params={"size": "0"})
        too_big = await api_client.call(
            "GET", f"{root}/v3/events/e", params={"size": str(transport.MAX_RESPONSE_BYTES + 1)}
        )
    assert whole.answer is not None and whole.answer.body == big
    assert too_big.answer is not None and "larger than" in too_big.answer.error


# --- 13.2: redirects are never followed --------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("origin", ["same", "cross"])
async def test_a_redirect_fails_the_batch_and_the_target_gets_nothing(
    aiohttp_server: Any, settings: Settings, status: int, origin: str
) -> None:
    landed: list[str] = []

    async def target(request: web.Request) -> web.StreamResponse:
        landed.append(request.path)
        return web.Response(status=200)

    elsewhere = await start(aiohttp_server, app_with({("PUT", "/{tail:.*}"): target}))
    box: dict[str, str] = {}

    async def put(request: web.Request) -> web.StreamResponse:
        where = (
            f"{elsewhere}/v3/other" if origin == "cross" else f"{box['root']}/v3/events/other/tracks/t/registrations"
        )
        return _redirect(status, where)

    async def other(request: web.Request) -> web.StreamResponse:
        landed.append(request.path)
        return web.Response(status=200)

    app = app_with({("PUT", "/v3/events/other/tracks/t/registrations"): other, ("PUT", PUT_PATH): put})
    box["root"] = await start(aiohttp_server, app)
    (result,) = await send(plan_batches(groups_of(2), batch_size=10), replace(settings, base_url=box["root"] + "/v3"))
    assert result.http_status == status
    assert result.error.startswith("the API answered with a redirect to http://127.0.0.1:")
    assert result.error.endswith("; batcher does not follow redirects (check --base-url)")
    assert landed == []


def _redirect(status: int, where: str) -> web.Response:
    return web.Response(status=status, headers={"Location": where})


async def test_a_redirecting_token_endpoint_stops_the_run(aiohttp_server: Any, settings: Settings) -> None:
    landed: list[str] = []

    async def token(request: web.Request) -> web.StreamResponse:
        return _redirect(307, str(request.url.with_path("/stolen")))

    async def stolen(request: web.Request) -> web.StreamResponse:
        landed.append(request.path)
        return web.json_response({"access_token": "x"})

    root = await start(aiohttp_server, app_with({("POST", TOKEN_PATH): token, ("POST", "/stolen"): stolen}))
    credentials = Credentials("", refresh_token="ref-1234", client_id="c", token_url=root + TOKEN_PATH)
    with pytest.raises(AuthError, match=r"redirect to .*/stolen; batcher does not follow redirects"):
        await send(
            plan_batches(groups_of(1), batch_size=1), replace(settings, base_url=root + "/v3"), credentials=credentials
        )
    assert landed == []


# --- 13.3: an unusable Retry-After cannot loop forever ------------------------------------------------


@pytest.mark.real_waits  # the unusable values must fall back to a (short) backoff, not to no wait at all
@pytest.mark.parametrize("retry_after", ["0", "-5", "nan", "inf", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_an_unusable_retry_after_still_brings_the_throttle_stop(
    aiohttp_server: Any, settings: Settings, retry_after: str
) -> None:
    groups = groups_of(3)
    url, state = await serve(
        aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, throttle_rate=1.0, retry_after=retry_after), groups
    )
    quick = replace(settings, base_url=url, max_throttle_wait_s=0.5)
    started = time.monotonic()
    with pytest.raises(RunStopped, match="kept answering 429"):
        await asyncio.wait_for(send(plan_batches(groups, batch_size=1), quick), timeout=20)
    assert time.monotonic() - started < 10
    assert len(state.puts) <= 10


def test_cli_with_retry_after_0_stops_with_exit_3_in_bounded_time(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = rows_for(5)
    box = start_sandbox(sandbox.Scenario(rate_limit_per_s=None, throttle_rate=1.0, retry_after="0"), known(rows))
    started = time.monotonic()
    code = run_cli(run_args(write_csv(rows), box.url, tmp_path / "r.csv", "--rate 100 --max-throttle-wait 10"))
    assert code == 3
    assert time.monotonic() - started < 20
    assert "kept answering 429" in capsys.readouterr().err
    assert set(outcomes(tmp_path / "r.csv")) == {"pending"}


# --- 13.5 and 13.12: the request count, a 204 ------------------------------------------------------------


async def test_every_request_on_the_wire_is_counted_even_of_unfinished_batches(
    aiohttp_server: Any, settings: Settings
) -> None:
    groups = groups_of(4)
    url, state = await serve(
        aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, statuses=[503, 503], daily_quota=4), groups
    )
    stats = WireStats()
    with pytest.raises(RunStopped):
        await send(plan_batches(groups, batch_size=1), replace(settings, base_url=url, concurrency=1), stats=stats)
    # two 503s and a 200 for batch 1, a 200 for batch 2, then the quota's 429 for batch 3, which never finished
    assert [p.status for p in state.puts] == [503, 503, 200, 200, 429]
    assert stats.requests == 5


async def test_a_204_is_success(aiohttp_server: Any, settings: Settings) -> None:
    async def put(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    root = await start(aiohttp_server, app_with({("PUT", PUT_PATH): put}))
    (result,) = await send(plan_batches(groups_of(2), batch_size=10), replace(settings, base_url=root + "/v3"))
    assert (result.http_status, result.error, result.failed_ids) == (204, "", frozenset())


# --- 13.4: secrets a server echoes ----------------------------------------------------------------------

OLD_ACCESS, OLD_REFRESH = "acc-OLD-7q2w9e4r", "ref-OLD-3k8j1h5g"
NEW_ACCESS, NEW_REFRESH = "acc-NEW-1z2x3c4v", "ref-NEW-9m8n7b6v"
CLIENT_ID, CLIENT_SECRET = "client-hostile", "cs-SECRET-5t6y7u8i"
BASIC = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
SECRETS = (OLD_ACCESS, OLD_REFRESH, NEW_ACCESS, NEW_REFRESH, CLIENT_SECRET, BASIC)


def echoing_app() -> web.Application:
    """Echoes the bearer token in 400/500 bodies and 401s, and the Basic header and secret on invalid_grant."""
    tokens = {"access": OLD_ACCESS, "refresh": OLD_REFRESH, "old_uses": 0}

    async def put(request: web.Request) -> web.StreamResponse:
        bearer = request.headers.get("Authorization", "")
        if bearer == f"Bearer {OLD_ACCESS}":
            tokens["old_uses"] = int(tokens["old_uses"]) + 1
        if bearer != f"Bearer {tokens['access']}" or (OLD_ACCESS in bearer and int(tokens["old_uses"]) > 1):
            message = f"{bearer} is expired; the refresh token is {tokens['refresh']}"
            return web.json_response([{"error_key": "unauthorized", "error_message": message}], status=401)
        track = request.match_info["track_id"]
        if track == "t400":
            return web.json_response([{"error_key": "x", "error_message": f"bad request from {bearer}"}], status=400)
        if track == "t500":
            return web.Response(status=500, text=f"crash: Authorization: {bearer}; refresh={tokens['refresh']}")
        return web.Response(status=200)

    async def token(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if form.get("refresh_token") != tokens["refresh"]:
            basic = request.headers.get("Authorization")
            error = f"invalid_grant for {basic} secret={CLIENT_SECRET} {form.get('refresh_token')}"
            return web.json_response({"error": error, "error_description": error}, status=400)
        tokens.update(access=NEW_ACCESS, refresh=NEW_REFRESH)
        return web.json_response({"access_token": NEW_ACCESS, "refresh_token": NEW_REFRESH, "token_type": "Bearer"})

    return app_with({("PUT", PUT_PATH): put, ("POST", TOKEN_PATH): token})


def everything_written(capsys: pytest.CaptureFixture[str], folder: Path) -> dict[str, str]:
    out, err = capsys.readouterr()
    texts = {"stdout": out, "stderr": err}
    for path in folder.iterdir():
        if path.is_file() and path.name != "tokens.json":
            texts[path.name] = path.read_text(encoding="utf-8", errors="replace")
    return texts


def leaks(texts: dict[str, str]) -> list[tuple[str, str]]:
    return [(name, secret) for name, text in texts.items() for secret in SECRETS if secret in text]


def hostile_run(run_cli: RunCli, root: str, folder: Path, rows: list[list[str]], token_file: dict[str, str]) -> int:
    (folder / "tokens.json").write_text(json.dumps(token_file), encoding="utf-8")
    (folder / "input.csv").write_text(
        "event_id,track_id,registration_id,registration_status\n" + "".join(",".join(row) + "\n" for row in rows)
    )
    options = f"--rate 100 --batch-size 1 --token-file {folder / 'tokens.json'} -vv --log-file {folder / 'run.log'}"
    options += " --no-snapshot"  # the scripted answers are for the PUTs
    environ = {"CTCT_TOKEN_URL": root + TOKEN_PATH, "CTCT_CLIENT_SECRET": CLIENT_SECRET, "CTCT_CLIENT_ID": CLIENT_ID}
    summary = f" --summary-json {folder / 'summary.json'}"
    return run_cli(run_args(folder / "input.csv", root + "/v3", folder / "results.csv", options + summary), environ)


def test_echoed_tokens_never_reach_any_output(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [*rows_for(3, track="ok"), *rows_for(1, track="t400"), *rows_for(1, track="t500")]
    with in_thread(echoing_app()) as root:
        code = hostile_run(run_cli, root, tmp_path, rows, {"access_token": OLD_ACCESS, "refresh_token": OLD_REFRESH})
    texts = everything_written(capsys, tmp_path)
    assert code == 1, texts["stderr"]
    assert {"run.log", "summary.json", "results.csv"} <= set(texts)
    assert [r["outcome"] for r in read_results(tmp_path / "results.csv")] == ["succeeded"] * 3 + ["failed"] * 2
    assert "bad request from Bearer ***" in texts["results.csv"]
    assert leaks(texts) == []


def test_an_invalid_grant_echoing_the_client_secret_and_basic_header_leaks_nothing(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with in_thread(echoing_app()) as root:
        code = hostile_run(
            run_cli, root, tmp_path, rows_for(2), {"access_token": "", "refresh_token": "ref-STALE-0000"}
        )
    texts = everything_written(capsys, tmp_path)
    assert code == 3
    assert "invalid_grant" in texts["stderr"]
    assert leaks(texts) == []


# --- 10.15: a 404 that is not the API ----------------------------------------------------------------


def test_a_wrong_base_url_stops_the_run_and_leaves_rows_pending(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = rows_for(3)
    box = start_sandbox(registrations=known(rows))
    wrong = box.url.removesuffix("/v3") + "/v2"
    results = tmp_path / "r.csv"
    code = run_cli(run_args(write_csv(rows), wrong, results, ""))
    err = capsys.readouterr().err
    assert code == 3
    assert f"{wrong}/events/{EVENT}" in err and "the base URL looks wrong" in err
    assert "fix --base-url (it is not the API's), then to send the rows not yet sent: " in err
    assert set(outcomes(results)) == {"pending"}


# --- 13.9: a log file on a full disk -------------------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_log_file_on_a_full_disk_is_reported_once(
    run_cli: RunCli,
    start_sandbox: StartSandbox,
    write_csv: WriteCsv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = rows_for(20)
    box = start_sandbox(registrations=known(rows))
    code = run_cli(
        run_args(write_csv(rows), box.url, tmp_path / "r.csv", "--rate 1000 --batch-size 1 --log-file /dev/full -v")
    )
    err = capsys.readouterr().err
    assert code == 0
    assert "Logging error" not in err and "Traceback" not in err
    assert err.count("/dev/full: cannot write the log file (No space left on device); the run goes on without it") == 1
