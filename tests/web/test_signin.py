"""Signed out: the page names the profile, offers the login of `batcher login`, and goes on once approved."""

from __future__ import annotations

from batcher.sandbox import app as sandbox
from batcher.web.app import JOBS
from tests.web.conftest import ACCESS_TOKEN, PageFactory


async def test_the_page_names_the_profile_and_where_its_token_comes_from(make_page: PageFactory) -> None:
    page = await make_page()
    shown = await (await page.client.get("/")).text()
    assert "Profile <strong>default</strong>: the access token in CTCT_ACCESS_TOKEN." in shown
    assert "log in first" not in shown


async def test_signed_out_the_page_logs_in_by_the_device_flow_then_goes_on(make_page: PageFactory) -> None:
    scenario = sandbox.Scenario(token=ACCESS_TOKEN, rate_limit_per_s=None, auto_approve_after=1)
    page = await make_page(scenario=scenario, environ={})
    shown = await (await page.client.get("/")).text()
    assert "Signed out: log in first" in shown
    assert "none: run &#39;batcher login&#39;, or set CTCT_ACCESS_TOKEN" in shown

    response = await page.post("/login", {"client_id": sandbox.SANDBOX_CLIENT_ID})
    assert response.status == 303 and response.headers["Location"] == "/login"
    signin = page.app[JOBS].signin
    assert signin is not None
    await signin.task
    assert signin.phase == "done", signin.error
    shown = await (await page.client.get("/login")).text()
    assert "Logged in: profile &#39;default&#39;" in shown and ">Go on</a>" in shown
    assert "Signed out" not in await (await page.client.get("/")).text()
    assert "the login of client ID sandbox-client" in await (await page.client.get("/")).text()


async def test_a_login_without_a_client_id_says_what_to_do(make_page: PageFactory) -> None:
    page = await make_page(environ={})
    response = await page.post("/login", {"client_id": " "})
    assert response.status == 400
    assert "no client ID" in await response.text()
