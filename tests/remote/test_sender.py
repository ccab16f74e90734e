"""The sender over real HTTP against the sandbox on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from batcher.errors import AuthError, JournalError, QuotaError, RunStopped, WrongBaseUrl
from batcher.http.auth import Credentials
from batcher.http.client import ApiClient, QuotaGate
from batcher.models import Batch, BatchResult, QueryFlags, RowGroup, WireStats
from batcher.plan.chunker import plan_batches
from batcher.remote.sender import send_batches
from batcher.sandbox import app as sandbox
from batcher.settings import Settings
from tests.conftest import EVENT, TRACK, reg_id

TOKEN = Credentials(sandbox.SANDBOX_TOKEN)


def groups_of(*sizes: int, track: str = TRACK) -> list[RowGroup]:
    groups, offset = [], 0
    for index, size in enumerate(sizes):
        ids = tuple(reg_id(offset + n) for n in range(size))
        groups.append(RowGroup(EVENT, f"{track}{index}", "CANCELED", ids, tuple(range(offset, offset + size))))
        offset += size
    return groups


def registrations(groups: list[RowGroup]) -> list[tuple[str, str, str, str]]:
    return [(g.event_id, g.track_id, rid, "REGISTERED") for g in groups for rid in g.registration_ids]


async def serve(
    aiohttp_server: Any, scenario: sandbox.Scenario, groups: list[RowGroup]
) -> tuple[str, sandbox.SandboxState]:
    app = sandbox.make_app(scenario, registrations(groups))
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("/v3")), app[sandbox.STATE]


async def send(
    batches: list[Batch],
    settings: Settings,
    *,
    credentials: Credentials = TOKEN,
    on_result: Callable[[BatchResult], None] = lambda _: None,
    stop: asyncio.Event | None = None,
    quota: QuotaGate | None = None,
    stats: WireStats | None = None,
    client: ApiClient | None = None,
) -> list[BatchResult]:
    """send_batches on client, else on a client of its own (as a run's session opens one)."""
    if client is not None:
        return await send_batches(batches, settings, client, on_result=on_result)
    async with ApiClient(settings, credentials, stop=stop, quota=quota, stats=stats) as own:
        return await send_batches(batches, settings, own, on_result=on_result)


async def test_200_applies_every_batch_with_full_requests(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(250, 30)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None), groups)
    batches = plan_batches(groups, batch_size=100)
    results = await send(batches, replace(settings, base_url=url, batch_size=100))
    assert [(r.batch, r.http_status, r.attempts) for r in results] == [(n, 200, 1) for n in range(1, 5)]
    assert sorted(len(p.json["registration_ids"]) for p in state.puts) == [30, 50, 100, 100]  # type: ignore[index]
    assert all(state.status_of(EVENT, g.track_id, rid) == "CANCELED" for g in groups for rid in g.registration_ids)


async def test_request_carries_token_flags_and_body(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(2)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None), groups)
    flags = QueryFlags(increase_count=True, return_items_to_inventory=False)
    await send(plan_batches(groups, batch_size=10), replace(settings, base_url=url, flags=flags))
    (put,) = state.puts
    assert put.path == f"/v3/events/{EVENT}/tracks/{TRACK}0/registrations"
    assert put.query == {"increase_count": "true", "return_items_to_inventory": "false"}
    assert put.headers["Authorization"] == f"Bearer {sandbox.SANDBOX_TOKEN}"
    assert put.headers["Content-Type"] == "application/json"
    assert put.json == {"registration_ids": [reg_id(0), reg_id(1)], "registration_status": "CANCELED"}


async def test_207_reports_only_ids_of_the_batch(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(3)
    scenario = sandbox.Scenario(rate_limit_per_s=None, fail_ids=frozenset({reg_id(1)}))
    url, _ = await serve(aiohttp_server, scenario, groups)
    (result,) = await send(plan_batches(groups, batch_size=10), replace(settings, base_url=url))
    assert result.http_status == 207
    assert result.failed_ids == frozenset({reg_id(1)})


async def test_5xx_is_retried_then_succeeds(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(1)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, statuses=[503, 500]), groups)
    (result,) = await send(plan_batches(groups, batch_size=10), replace(settings, base_url=url))
    assert (result.http_status, result.attempts, result.error) == (200, 3, "")
    assert [p.status for p in state.puts] == [503, 500, 200]


async def test_retries_run_out_into_a_failed_batch(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(1)
    scenario = sandbox.Scenario(rate_limit_per_s=None, status=502, error_body="<html>Bad Gateway</html>")
    url, state = await serve(aiohttp_server, scenario, groups)
    (result,) = await send(plan_batches(groups, batch_size=10), replace(settings, base_url=url, max_retries=2))
    assert result.attempts == 3
    assert result.error == "gave up after 3 attempts: HTTP 502 from a proxy (an HTML page, not the API)"
    assert len(state.puts) == 3


async def test_a_200_with_a_web_page_stops_the_run_as_a_wrong_base_url(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(3)
    scenario = sandbox.Scenario(rate_limit_per_s=None, status=200, error_body="<html><body>Welcome</body></html>")
    url, state = await serve(aiohttp_server, scenario, groups)
    with pytest.raises(WrongBaseUrl, match=r"HTTP 200 with an HTML page from .*: the base URL looks wrong"):
        await send(plan_batches(groups, batch_size=1), replace(settings, base_url=url))
    assert len(state.puts) == 1  # the group's first batch goes alone, and its answer stops the run


async def test_timeout_is_retried_and_counted(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(1)
    url, _ = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, latency_s=(0.3, 0.3)), groups)
    fast = replace(settings, base_url=url, timeout_s=0.05, max_retries=1)
    (result,) = await send(plan_batches(groups, batch_size=10), fast)
    assert result.http_status is None
    assert result.error == "gave up after 2 attempts: no answer within 0.05 s"


async def test_400_on_a_single_id_fails_that_batch_and_the_run_goes_on(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(1, 2)
    scenario = sandbox.Scenario(rate_limit_per_s=None, poison_ids=frozenset({reg_id(0)}))
    url, _ = await serve(aiohttp_server, scenario, groups)
    results = await send(plan_batches(groups, batch_size=10), replace(settings, base_url=url))
    assert [r.http_status for r in results] == [400, 200]
    assert results[0].error == "HTTP 400: a registration id in the request is not valid"


async def test_400_is_bisected_so_only_the_offending_ids_fail(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(100)
    poison = frozenset({reg_id(37)})
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, poison_ids=poison), groups)
    (result,) = await send(plan_batches(groups, batch_size=100), replace(settings, base_url=url))
    assert set(result.id_errors) == {reg_id(37)}
    assert result.id_errors[reg_id(37)][0] == 400
    assert result.failed_ids == frozenset() and result.unsent_ids == frozenset() and result.error == ""
    assert result.http_status == 200  # what the server answered for the ids it applied, not a made-up 207
    assert result.attempts == len(state.puts)
    assert len(state.puts) - 1 <= 2 * 7  # at most 2*ceil(log2(100)) extra requests for one bad id
    statuses = {state.status_of(EVENT, f"{TRACK}0", rid) for rid in groups[0].registration_ids if rid not in poison}
    assert statuses == {"CANCELED"}


async def test_404_sends_one_request_for_the_whole_group(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(5, 2)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None), groups[1:])
    results = await send(plan_batches(groups, batch_size=1), replace(settings, base_url=url, concurrency=4))
    assert [r.http_status for r in results] == [404] * 5 + [200, 200]
    assert sum(1 for p in state.puts if p.status == 404) == 1
    assert [r.attempts for r in results[:5]] == [1, 0, 0, 0, 0]
    assert results[1].error.startswith("not sent: batch 1 of this event and track got HTTP 404")


async def test_401_stops_the_run_and_leaves_unsent_batches_without_result(
    aiohttp_server: Any, settings: Settings
) -> None:
    groups = groups_of(10)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None), groups)
    seen: list[BatchResult] = []
    with pytest.raises(AuthError, match="rejected the access token"):
        await send(
            plan_batches(groups, batch_size=1),
            replace(settings, base_url=url, concurrency=1),
            credentials=Credentials("wrong-token"),
            on_result=seen.append,
        )
    assert seen == []
    assert len(state.puts) == 1


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [(403, None, AuthError), (429, '[{"error_key": "quota_exceeded", "error_message": "daily quota"}]', QuotaError)],
)
async def test_run_stopping_answers_raise(
    aiohttp_server: Any, settings: Settings, status: int, body: str | None, error: type[Exception]
) -> None:
    groups = groups_of(3)
    scenario = sandbox.Scenario(rate_limit_per_s=None, status=status, error_body=body)
    url, state = await serve(aiohttp_server, scenario, groups)
    with pytest.raises(error):
        await send(plan_batches(groups, batch_size=1), replace(settings, base_url=url, concurrency=1))
    assert len(state.puts) == 1


async def test_stop_event_leaves_remaining_batches_unsent(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(20)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None), groups)
    stop = asyncio.Event()
    seen: list[BatchResult] = []

    def on_result(result: BatchResult) -> None:
        seen.append(result)
        if len(seen) == 3:
            stop.set()

    results = await send(
        plan_batches(groups, batch_size=1),
        replace(settings, base_url=url, concurrency=1),
        on_result=on_result,
        stop=stop,
    )
    assert len(results) == 3
    assert len(state.puts) == 3


async def test_no_more_than_concurrency_requests_are_in_flight(aiohttp_server: Any, settings: Settings) -> None:
    # the server counts the requests it holds at once: no clock is read
    holding = {"now": 0, "most": 0, "puts": 0}

    async def put(request: web.Request) -> web.Response:
        holding["now"] += 1
        holding["puts"] += 1
        holding["most"] = max(holding["most"], holding["now"])
        await asyncio.sleep(0.05)
        holding["now"] -= 1
        return web.Response(status=503 if holding["puts"] <= 3 else 200)

    app = web.Application()
    app.router.add_put("/v3/events/{event_id}/tracks/{track_id}/registrations", put)
    server = await aiohttp_server(app, host="127.0.0.1")
    groups = groups_of(24)
    await send(
        plan_batches(groups, batch_size=1), replace(settings, base_url=str(server.make_url("/v3")), concurrency=3)
    )
    assert holding["most"] == 3
    assert holding["puts"] == 24 + 3


async def test_a_journal_failure_stops_the_run_and_other_errors_are_not_taken_for_one(
    aiohttp_server: Any, settings: Settings
) -> None:
    groups = groups_of(5)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None), groups)
    fast = replace(settings, base_url=url, concurrency=1)

    def full_disk(result: BatchResult) -> None:
        raise JournalError("r.csv.journal: cannot write the journal (No space left on device)")

    with pytest.raises(JournalError, match="No space left"):
        await send(plan_batches(groups, batch_size=1), fast, on_result=full_disk)
    assert len(state.puts) == 1

    def bug(result: BatchResult) -> None:
        raise RunStopped("not a journal failure")

    with pytest.raises(RunStopped, match="not a journal failure"):
        await send(plan_batches(groups, batch_size=1), fast, on_result=bug)


async def test_a_client_passed_in_is_shared_and_counts_requests(aiohttp_server: Any, settings: Settings) -> None:
    groups = groups_of(4)
    url, state = await serve(aiohttp_server, sandbox.Scenario(rate_limit_per_s=None, statuses=[503]), groups)
    fast = replace(settings, base_url=url)
    async with ApiClient(fast, TOKEN) as shared:
        first = await send(plan_batches(groups, batch_size=2)[:1], fast, client=shared)
        second = await send(plan_batches(groups, batch_size=2)[1:], fast, client=shared)
    assert [r.http_status for r in first + second] == [200, 200]
    assert shared.stats.requests == len(state.puts) == 3  # a 503 and its retry, then the second batch
