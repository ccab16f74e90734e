"""The sandbox's device flow against RFC 8628 and API.md: authorization, the grant's answers, the page, revocation."""

from __future__ import annotations

from typing import Any

from batcher.sandbox import app as sandbox

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


async def start(aiohttp_client: Any, **changes: Any) -> tuple[Any, dict[str, Any]]:
    client = await aiohttp_client(sandbox.make_app(sandbox.Scenario(rate_limit_per_s=None, **changes)))
    answer = await client.post(
        sandbox.DEVICE_PATH, data={"client_id": sandbox.SANDBOX_CLIENT_ID, "scope": "campaign_data offline_access"}
    )
    assert answer.status == 200
    return client, await answer.json()


async def poll(client: Any, device_code: str) -> tuple[int, dict[str, Any]]:
    form = {"grant_type": GRANT, "device_code": device_code, "client_id": sandbox.SANDBOX_CLIENT_ID}
    answer = await client.post(sandbox.TOKEN_PATH, data=form)
    return answer.status, await answer.json()


async def test_device_authorization_answers_the_rfc_s_fields(aiohttp_client: Any) -> None:
    _, code = await start(aiohttp_client, device_interval_s=3)
    assert set(code) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert code["verification_uri"].endswith("/activate") and code["interval"] == 3 and code["expires_in"] == 600
    assert code["verification_uri_complete"] == f"{code['verification_uri']}?user_code={code['user_code']}"


async def test_an_unknown_client_or_a_device_flow_turned_off_is_refused(aiohttp_client: Any) -> None:
    client = await aiohttp_client(sandbox.make_app(sandbox.Scenario(device_flow=False)))
    unknown = await client.post(sandbox.DEVICE_PATH, data={"client_id": "nobody"})
    assert (unknown.status, (await unknown.json())["error"]) == (401, "invalid_client")
    off = await client.post(sandbox.DEVICE_PATH, data={"client_id": sandbox.SANDBOX_CLIENT_ID})
    assert (off.status, (await off.json())["error"]) == (400, "unauthorized_client")


async def test_pending_until_approved_at_the_page_then_tokens_the_api_accepts_once(aiohttp_client: Any) -> None:
    client, code = await start(aiohttp_client)
    assert await poll(client, code["device_code"]) == (
        400,
        {"error": "authorization_pending", "error_description": "The device authorization is pending."},
    )
    page = await client.get("/activate", params={"user_code": code["user_code"]})
    text = await page.text()
    assert page.status == 200 and "Approve" in text and f'value="{code["user_code"]}"' in text
    typed = code["user_code"].lower().replace("-", " ")  # a person types it loosely
    approved = await client.post("/activate", data={"user_code": typed, "decision": "approve"})
    assert approved.status == 200 and "Approved" in await approved.text()
    status, tokens = await poll(client, code["device_code"])
    assert status == 200 and tokens["expires_in"] == 86_400 and tokens["refresh_token"]
    assert (
        await client.get("/v3/events/x", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    ).status == 404
    assert (await poll(client, code["device_code"]))[1]["error"] == "invalid_grant"


async def test_denied_at_the_page_and_auto_approval_after_n_polls(aiohttp_client: Any) -> None:
    client, code = await start(aiohttp_client)
    await client.post("/activate", data={"user_code": code["user_code"], "decision": "deny"})
    assert (await poll(client, code["device_code"]))[1]["error"] == "access_denied"
    client, code = await start(aiohttp_client, auto_approve_after=2)
    answers = [(await poll(client, code["device_code"]))[0] for _ in range(3)]
    assert answers == [400, 400, 200]


async def test_the_page_escapes_what_it_is_given_and_refuses_an_unknown_code(aiohttp_client: Any) -> None:
    client, _ = await start(aiohttp_client)
    page = await client.get("/activate", params={"user_code": '"><script>x</script>'})
    assert "<script>x" not in await page.text()
    unknown = await client.post("/activate", data={"user_code": "ZZZZ-ZZZZ", "decision": "approve"})
    assert unknown.status == 400


async def test_revocation_forgets_a_token_and_can_be_absent(aiohttp_client: Any) -> None:
    client = await aiohttp_client(sandbox.make_app(sandbox.Scenario(rate_limit_per_s=None)))
    revoked = await client.post(sandbox.REVOKE_PATH, data={"token": sandbox.SANDBOX_REFRESH_TOKEN})
    assert revoked.status == 200 and client.app[sandbox.STATE].refresh_token == ""
    absent = await aiohttp_client(sandbox.make_app(sandbox.Scenario(revocation=False)))
    assert (await absent.post(sandbox.REVOKE_PATH, data={"token": "x"})).status == 404
