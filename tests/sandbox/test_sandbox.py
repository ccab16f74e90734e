"""The emulator itself, checked against ../shared/API.md and, where present, the official spec excerpt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from batcher.sandbox import app as sandbox
from tests.conftest import EVENT, TRACK, reg_id

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "ctct-v3-event-registrations.openapi.yaml"
AUTH = {"Authorization": f"Bearer {sandbox.SANDBOX_TOKEN}"}
URL = f"/v3/events/{EVENT}/tracks/{TRACK}/registrations"


async def client_for(aiohttp_client: Any, scenario: sandbox.Scenario | None = None) -> Any:
    rows = [(EVENT, TRACK, reg_id(n), "REGISTERED") for n in range(3)]
    return await aiohttp_client(sandbox.make_app(scenario or sandbox.Scenario(rate_limit_per_s=None), rows))


def body(*ids: str, status: str = "CANCELED") -> dict[str, object]:
    return {"registration_ids": list(ids), "registration_status": status}


async def test_200_when_every_id_belongs_to_the_track(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client)
    response = await client.put(URL, json=body(reg_id(0), reg_id(1)), headers=AUTH)
    assert response.status == 200
    got = await client.get(f"{URL}/{reg_id(0)}", headers=AUTH)
    assert (await got.json())["registration_status"] == "CANCELED"


async def test_207_lists_ids_outside_the_track_and_applies_the_rest(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client)
    unknown = reg_id(99)
    response = await client.put(URL, json=body(reg_id(2), unknown), headers=AUTH)
    assert response.status == 207
    assert await response.json() == {"failed_registration_ids": [unknown]}
    assert client.app[sandbox.STATE].status_of(EVENT, TRACK, reg_id(2)) == "CANCELED"


@pytest.mark.parametrize(
    ("url", "payload", "headers", "status"),
    [
        (URL, body(reg_id(0)), {}, 401),
        (URL, body(reg_id(0)), {"Authorization": "Bearer wrong"}, 401),
        (URL, {"registration_ids": [reg_id(0)]}, AUTH, 400),
        (URL, {"registration_status": "CANCELED"}, AUTH, 400),
        (URL, body(reg_id(0), status="Cancelled"), AUTH, 400),
        (URL, body(*[reg_id(n) for n in range(501)]), AUTH, 400),
        (URL + "?increase_count=yes", body(reg_id(0)), AUTH, 400),
        (f"/v3/events/{reg_id(5)}/tracks/{TRACK}/registrations", body(reg_id(0)), AUTH, 404),
        (f"/v3/events/{EVENT}/tracks/nope/registrations", body(reg_id(0)), AUTH, 404),
    ],
)
async def test_error_statuses(
    aiohttp_client: Any, url: str, payload: dict[str, object], headers: dict[str, str], status: int
) -> None:
    client = await client_for(aiohttp_client)
    response = await client.put(url, json=payload, headers=headers)
    assert response.status == status
    errors = await response.json()
    errors = errors if isinstance(errors, list) else [errors]
    assert all({"error_key", "error_message"} <= set(item) for item in errors)


async def test_malformed_json_is_400(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client)
    response = await client.put(URL, data=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert response.status == 400


async def test_more_than_the_rate_limit_in_one_second_gets_429_throttled(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, sandbox.Scenario(rate_limit_per_s=2))
    statuses = [(await client.put(URL, json=body(reg_id(0)), headers=AUTH)).status for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_every_request_is_recorded(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client)
    await client.put(URL + "?increase_count=true", json=body(reg_id(0)), headers=AUTH)
    (recorded,) = client.app[sandbox.STATE].requests
    assert (recorded.method, recorded.path, recorded.query, recorded.status) == (
        "PUT",
        URL,
        {"increase_count": "true"},
        200,
    )
    assert recorded.json == body(reg_id(0))


def test_registrations_file_without_required_columns_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("event_id,registration_id\nx,y\n")
    with pytest.raises(sandbox.InputError, match="missing: track_id"):
        sandbox.read_registrations(path)


def test_routes_and_statuses_agree_with_the_official_spec() -> None:
    if not SPEC.exists():
        pytest.skip(f"the official spec excerpt is not beside this checkout ({SPEC}); it lives in ../shared/spec")
    text = SPEC.read_text(encoding="utf-8")
    assert "/events/{event_id}/tracks/{track_id}/registrations:" in text
    assert "/events/{event_id}/tracks/{track_id}/registrations/{registration_id}:" in text
    put_section = text.split("put:", 1)[1].split("/events/", 1)[0]
    for status in ("'200'", "'207'", "'400'", "'401'", "'403'", "'404'", "'500'"):
        assert status in put_section
    for flag in sandbox.FLAG_NAMES:
        assert f"name: {flag}" in put_section
    for status in sandbox.KNOWN_STATUSES:
        assert f"<code>{status}</code>" in text


async def test_random_5xx_applies_nothing_and_can_carry_html(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, sandbox.Scenario(rate_limit_per_s=None, error_rate=1.0, html_errors=True))
    response = await client.put(URL, json=body(reg_id(0)), headers=AUTH)
    assert response.status in (500, 503)
    assert (await response.text()).startswith("<html>")
    assert client.app[sandbox.STATE].status_of(EVENT, TRACK, reg_id(0)) == "REGISTERED"


async def test_reset_drops_the_connection_unanswered(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, sandbox.Scenario(rate_limit_per_s=None, reset_rate=1.0))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.put(URL, json=body(reg_id(0)), headers=AUTH)
    assert [r.status for r in client.app[sandbox.STATE].requests] == [0]
    assert client.app[sandbox.STATE].status_of(EVENT, TRACK, reg_id(0)) == "REGISTERED"


async def test_throttle_and_quota_answers_carry_their_error_keys(aiohttp_client: Any) -> None:
    scenario = sandbox.Scenario(rate_limit_per_s=None, daily_quota=1, retry_after="2")
    client = await client_for(aiohttp_client, scenario)
    assert (await client.put(URL, json=body(reg_id(0)), headers=AUTH)).status == 200
    over = await client.put(URL, json=body(reg_id(1)), headers=AUTH)
    assert over.status == 429
    assert over.headers["Retry-After"] == "2"
    assert (await over.json())[0]["error_key"] == "quota_exceeded"
    throttled = await client_for(aiohttp_client, sandbox.Scenario(rate_limit_per_s=None, throttle_rate=1.0))
    answer = await throttled.put(URL, json=body(reg_id(0)), headers=AUTH)
    assert (answer.status, (await answer.json())[0]["error_key"]) == (429, "throttled")


async def test_token_expires_and_a_rotating_refresh_token_works_once(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, sandbox.Scenario(rate_limit_per_s=None, token_expires_after=1))
    assert (await client.put(URL, json=body(reg_id(0)), headers=AUTH)).status == 200
    assert (await client.put(URL, json=body(reg_id(1)), headers=AUTH)).status == 401
    form = {
        "grant_type": "refresh_token",
        "refresh_token": sandbox.SANDBOX_REFRESH_TOKEN,
        "client_id": sandbox.SANDBOX_CLIENT_ID,
    }
    fresh = await (await client.post(sandbox.TOKEN_PATH, data=form)).json()
    assert fresh["refresh_token"] != sandbox.SANDBOX_REFRESH_TOKEN
    new_auth = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert (await client.put(URL, json=body(reg_id(1)), headers=new_auth)).status == 200
    reused = await client.post(sandbox.TOKEN_PATH, data=form)
    assert (reused.status, (await reused.json())["error"]) == (400, "invalid_grant")


async def test_207_lists_unknown_and_failing_ids_in_request_order_and_applies_only_the_rest(
    aiohttp_client: Any,
) -> None:
    client = await client_for(aiohttp_client, sandbox.Scenario(rate_limit_per_s=None, fail_ids=frozenset({reg_id(1)})))
    ids = [reg_id(98), reg_id(0), reg_id(1), reg_id(98), reg_id(2), reg_id(97)]
    response = await client.put(URL, json=body(*ids), headers=AUTH)
    assert response.status == 207
    assert await response.json() == {"failed_registration_ids": [reg_id(98), reg_id(1), reg_id(98), reg_id(97)]}
    state = client.app[sandbox.STATE]
    assert [state.status_of(EVENT, TRACK, reg_id(n)) for n in range(3)] == ["CANCELED", "REGISTERED", "CANCELED"]
    assert state.status_of(EVENT, TRACK, reg_id(98)) is None
